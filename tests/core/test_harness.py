"""The broker harness: what it records for tests and benchmarks, and what it reports."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import BROKERS, ENV_FILE, brokers_up

sys.path.insert(0, str(BROKERS.parent))
from harness import rabbitmq_cluster, registry  # tools/ is no package: the way bench/ imports it

DEFAULT_NAMES = ["redis", "rabbitmq", "kafka", "sqs", "mqtt", "frameworks"]


@pytest.fixture(scope="module")
def default_env() -> dict[str, str]:
    return brokers_up(*DEFAULT_NAMES)


def tls_handshake(port: int, cafile: str | None) -> None:
    """A TLS handshake with 127.0.0.1:port, verifying the server against ``cafile`` (None: the system CAs)."""
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname="127.0.0.1"):
        pass


def test_env_file_names_every_broker(default_env: dict[str, str]) -> None:
    lines = ENV_FILE.read_text().splitlines()
    assert lines == sorted(lines) and all("=" in line for line in lines)
    env = dict(line.split("=", 1) for line in lines)
    assert env["QCTL_TEST_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["QCTL_TEST_AMQP_URL"].startswith("amqp://")
    assert env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"].startswith("http://127.0.0.1:")
    assert env["QCTL_TEST_KAFKA_URL"].startswith("kafka://127.0.0.1:")
    assert env["QCTL_TEST_SQS_URL"] == "sqs+http://127.0.0.1:19324"
    assert env["QCTL_TEST_MQTT_URL"] == "mqtt://127.0.0.1:18830"
    assert env["QCTL_TEST_MQTT_AUTH_URL"] == "mqtt://qctl:qctl-secret@127.0.0.1:18831"
    assert env["QCTL_TEST_MQTTS_URL"] == "mqtts://qctl:qctl-secret@127.0.0.1:18832"
    assert env["QCTL_TEST_AMQPS_URL"] == "amqps://qctl:qctl-secret@127.0.0.1:35675/%2F"
    assert env["QCTL_TEST_AMQP_LIMITED_URL"] == "amqp://qctl-limited:qctl-secret@127.0.0.1:35672/%2F"
    assert env["QCTL_TEST_RABBITMQ_MANAGEMENT_HTTPS_URL"] == "https://127.0.0.1:35676"
    assert env["QCTL_TEST_KAFKA_SSL_URL"] == "kafka+ssl://127.0.0.1:39094"
    assert env["QCTL_TEST_KAFKA_SASL_URL"] == \
        "kafka+ssl://qctl:qctl-secret@127.0.0.1:39095?sasl_mechanism=SCRAM-SHA-512"
    # One harness CA signs every TLS listener.
    cas = {env[f"QCTL_TEST_{name}_CA_FILE"] for name in ("MQTT", "RABBITMQ", "KAFKA")}
    assert len(cas) == 1 and Path(cas.pop()).is_file()
    for name, db in (("SIDEKIQ", 5), ("BULLMQ", 6), ("RQ", 7), ("CELERY", 8)):
        assert env[f"QCTL_TEST_{name}_URL"] == f"redis://127.0.0.1:16379/{db}"
    assert Path(env["QCTL_TEST_FRAMEWORKS_PYTHON"]).is_file()
    # Dedicated ports: never the defaults, so brokers already running elsewhere are left alone.
    for default in (6379, 5672, 5671, 15672, 15671, 9092, 9093, 9324, 1883, 8883):
        assert not any(re.search(rf":{default}(?![0-9])", value) for value in env.values()), default


def test_up_is_idempotent_and_status_reports_serving(default_env: dict[str, str]) -> None:
    started = time.monotonic()
    again = subprocess.run([sys.executable, str(BROKERS), "up"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 30, again.stderr   # nothing restarted, nothing reinstalled
    assert "started" not in again.stderr and "installing" not in again.stderr, again.stderr
    status = subprocess.run([sys.executable, str(BROKERS), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == DEFAULT_NAMES
    assert all("stopped" not in line.split(";")[0] and "NOT" not in line for line in lines), status.stdout


@pytest.mark.parametrize("port", [35675, 35676, 39094, 39095, 18832], ids=["amqps", "management-https",
                                                                            "kafka-ssl", "kafka-sasl-ssl", "mqtts"])
def test_tls_listeners_verify_with_the_harness_ca_only(default_env: dict[str, str], port: int) -> None:
    tls_handshake(port, default_env["QCTL_TEST_RABBITMQ_CA_FILE"])
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(port, None)


def test_redis_mtls_needs_a_client_certificate() -> None:
    env = brokers_up("redis-mtls")
    assert env["QCTL_TEST_REDIS_MTLS_URL"] == "rediss://127.0.0.1:16381/0"
    ca, cert, key = (env[f"QCTL_TEST_REDIS_{name}"] for name in ("CA_FILE", "CLIENT_CERT", "CLIENT_KEY"))
    with redis.Redis(host="127.0.0.1", port=16381, ssl=True, ssl_ca_certs=ca, ssl_certfile=cert,
                     ssl_keyfile=key, socket_timeout=5) as client:
        assert client.ping()
    with pytest.raises(redis.ConnectionError), \
            redis.Redis(host="127.0.0.1", port=16381, ssl=True, ssl_ca_certs=ca, socket_timeout=5) as anonymous:
        anonymous.ping()


@pytest.mark.parametrize("name", ["redis-persist", "mqtt", "sqs"])
def test_restart_keeps_ports_env_and_data(name: str) -> None:
    env = brokers_up(name)
    if name == "redis-persist":
        with redis.Redis.from_url(env["QCTL_TEST_REDIS_PERSIST_URL"]) as client:
            client.set("qctl-harness-restart", "kept")
    away = registry.restart(name)
    assert away < 30
    assert brokers_up(name) == env | brokers_up(name)   # same env lines after the restart
    if name == "redis-persist":
        with redis.Redis.from_url(env["QCTL_TEST_REDIS_PERSIST_URL"]) as client:
            assert client.getdel("qctl-harness-restart") == b"kept"
    proc = subprocess.run([sys.executable, str(BROKERS), "restart", name], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "serving again" in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """The three-node RabbitMQ cluster, stopped again afterwards unless it was running before."""
    was_running = "clustered" in rabbitmq_cluster.status()
    env = brokers_up("rabbitmq-cluster")
    yield env
    if not was_running:
        subprocess.run([sys.executable, str(BROKERS), "down", "rabbitmq-cluster"], capture_output=True, timeout=300)


def test_rabbitmq_cluster_survives_losing_the_quorum_leader(cluster: dict[str, str]) -> None:
    import pika  # qctl's own dependency

    urls = cluster["QCTL_TEST_RABBITMQ_CLUSTER_URLS"].split(",")
    assert [url.rsplit(":", 1)[1] for url in urls] == ["36672/%2F", "36682/%2F", "36692/%2F"]
    assert len(cluster["QCTL_TEST_RABBITMQ_CLUSTER_MANAGEMENT_URLS"].split(",")) == 3
    again = subprocess.run([sys.executable, str(BROKERS), "up", "rabbitmq-cluster"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "joined" not in again.stderr, again.stderr

    queue = f"qctl-harness-qq-{time.monotonic_ns()}"
    with pika.BlockingConnection(pika.URLParameters(urls[0])) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(5):
            channel.basic_publish("", queue, str(i).encode())
    leader = rabbitmq_cluster.quorum_leader(queue)
    assert leader in {node.name for node in rabbitmq_cluster.NODES}
    number = rabbitmq_cluster.node_number(str(leader))
    rabbitmq_cluster.kill_node(number)
    survivor = urls[number % 3]
    deadline = time.monotonic() + 60
    while rabbitmq_cluster.quorum_leader(queue) in (leader, None) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rabbitmq_cluster.quorum_leader(queue) != leader
    assert rabbitmq_cluster.start_node(number) < 120
    with pika.BlockingConnection(pika.URLParameters(survivor)) as connection:
        channel = connection.channel()
        assert channel.queue_declare(queue, passive=True).method.message_count == 5
        channel.queue_delete(queue)


def test_unknown_broker_name_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, str(BROKERS), "up", "postgres"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown broker postgres" in proc.stderr
    proc = subprocess.run([sys.executable, str(BROKERS), "restart"], capture_output=True, text=True)
    assert proc.returncode == 2 and "restart needs a NAME" in proc.stderr
