"""The broker harness: what it records for tests and benchmarks, and what it reports."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BROKERS, ENV_FILE


def test_env_file_names_every_broker(redis_env: dict[str, str], rabbitmq_env: dict[str, str],
                                     kafka_env: dict[str, str]) -> None:
    lines = ENV_FILE.read_text().splitlines()
    assert lines == sorted(lines) and all("=" in line for line in lines)
    env = dict(line.split("=", 1) for line in lines)
    assert env["QCTL_TEST_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["QCTL_TEST_AMQP_URL"].startswith("amqp://")
    assert env["QCTL_TEST_RABBITMQ_MANAGEMENT_URL"].startswith("http://127.0.0.1:")
    assert env["QCTL_TEST_KAFKA_URL"].startswith("kafka://127.0.0.1:")
    # Dedicated ports: never the defaults, so brokers already running elsewhere are left alone.
    for default in (":6379/", ":5672/", ":15672", ":9092"):
        assert not any(default in value for value in env.values()), default


def test_up_is_idempotent_and_status_reports_serving(redis_env: dict[str, str], rabbitmq_env: dict[str, str],
                                                     kafka_env: dict[str, str]) -> None:
    again = subprocess.run([sys.executable, str(BROKERS), "up"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    status = subprocess.run([sys.executable, str(BROKERS), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["redis", "rabbitmq", "kafka"]
    assert all("stopped" not in line.split(";")[0] for line in lines), status.stdout


def test_unknown_broker_name_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, str(BROKERS), "up", "postgres"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown broker postgres" in proc.stderr
