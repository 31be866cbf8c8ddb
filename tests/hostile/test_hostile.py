"""The hostile operator's inputs that once broke the contract, each now a test against the real brokers.

Every case: one line on stderr (``qctl: error: ...``), the contract's exit code, no traceback, no password.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qctl.testing.driver import plain
from tests.conftest import QctlRunner, Run
from tests.kafka.driver import KafkaDriver
from tests.rabbitmq.driver import RabbitMQDriver


def error_line(run: Run, code: int) -> str:
    assert run.rc == code, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qctl: error: "), run
    assert "Traceback" not in run.err and "hint: rerun with --debug" not in run.err
    return lines[0]


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_amqp_handshake_timeout_is_exit_3_within_timeout(qctl: QctlRunner, silent_port: int,
                                                         redis_url: str) -> None:
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    for port in (silent_port, redis_port):  # a hung broker, and a port that speaks another protocol
        started = time.monotonic()
        run = qctl("stats", "-u", f"amqp://u:hunter22@127.0.0.1:{port}/%2F", "--timeout", "2", "q")
        assert "handshake" in error_line(run, 3) or "cannot reach" in run.err
        assert time.monotonic() - started < 2 + 4
        assert "hunter22" not in run.err


@pytest.mark.parametrize("empty", [["-u", ""], ["-p", ""]])
def test_an_empty_url_or_profile_is_exit_2(qctl: QctlRunner, empty: list[str]) -> None:
    assert "empty" in error_line(qctl("stats", *empty), 2)


def test_an_empty_qctl_url_is_exit_2(qctl: QctlRunner) -> None:
    assert "QCTL_URL" in error_line(qctl("stats", env={"QCTL_URL": ""}), 2)


@pytest.mark.parametrize("args", [
    ["redrive", "q:dlq", "--rate", "nan"], ["redrive", "q:dlq", "--rate", "inf"], ["stats", "--timeout", "nan"],
    ["stats", "--timeout", "inf"], ["stats", "--timeout", "1e308"], ["stats", "--watch", "nan"],
    ["peek", "q", "-n", "99999999999999999999"], ["stats", "--fail-age-above", "-inf"],
])
def test_non_finite_or_absurd_numbers_are_exit_2_before_anything_runs(qctl: QctlRunner, args: list[str],
                                                                      kafka_url: str) -> None:
    run = qctl(*args, "-u", kafka_url)
    assert "Invalid value" in error_line(run, 2)
    assert run.out == ""  # --watch nan used to print a table first


@pytest.mark.parametrize("topic", ["a:b", "has space", "nön-ascii", "", ".", "x" * 250])
def test_illegal_kafka_topic_names_are_usage_errors(qctl: QctlRunner, kafka_driver: KafkaDriver, topic: str,
                                                    tmp_path: Path) -> None:
    backup = tmp_path / "one.jsonl"
    backup.write_text('{"body": "x"}\n')
    for args in (["peek", topic], ["purge", topic, "--yes"], ["redrive", "x.DLT", "--to", topic],
                 ["restore", str(backup), "--to", topic]):
        run = qctl(*args, "-u", kafka_driver.url)
        assert "legal Kafka topic name" in error_line(run, 2), run


def test_control_characters_from_the_broker_are_escaped_in_tables(qctl: QctlRunner, redis_driver: object,
                                                                 redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    key = "evil\x1b]0;pwned\x07name"
    client.delete(key)
    client.xadd(key, {b"body": b"\x1b[2Jcleared", b"h\x1bdr": "v\x9bx".encode()})
    try:
        for args in (["stats", key], ["peek", key]):
            run = qctl(*args, "-u", redis_url)
            assert run.rc == 0, run
            assert not any(ch in run.out for ch in "\x1b\x07\x9b"), run.out
            assert "\\x1b" in run.out
        exact = qctl("peek", key, "-u", redis_url, "-o", "json").json()[0]
        assert exact["queue"] == key and exact["body"] == "\x1b[2Jcleared" and exact["headers"] == {"h\x1bdr": "v\x9bx"}
    finally:
        client.delete(key)


def _profile(tmp_path: Path, lines: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(lines)
    config.chmod(0o600)
    return {"QCTL_CONFIG": str(config)}


@pytest.mark.parametrize("role", ["ca_file", "cert_file", "key_file"])
def test_missing_tls_files_are_exit_2_naming_the_file_on_every_backend(qctl: QctlRunner, tmp_path: Path,
                                                                       rabbitmq_env: dict[str, str],
                                                                       kafka_url: str, role: str) -> None:
    missing = str(tmp_path / f"missing-{role}.pem")
    extra = f'cert_file = "{tmp_path / "c.pem"}"\n' if role == "key_file" else ""
    (tmp_path / "c.pem").write_text("not a certificate")
    urls = {
        "redis": "rediss://127.0.0.1:16380/0",
        "rabbitmq": "amqps://qctl:qctl-secret@127.0.0.1:35675/%2F",
        "management": rabbitmq_env["QCTL_TEST_AMQP_URL"],
        "kafka": kafka_url.replace("kafka://", "kafka+ssl://"),
    }
    for name, url in urls.items():
        management = 'management_url = "https://127.0.0.1:35676"\n' if name == "management" else ""
        env = _profile(tmp_path, f'[profiles.p]\nurl = "{url}"\n{management}{role} = "{missing}"\n{extra}')
        run = qctl("stats", "-p", "p", "q" if name != "management" else "q*", env=env)
        assert missing in error_line(run, 2), (name, run)


def test_a_file_that_is_not_a_certificate_is_exit_2_naming_it(qctl: QctlRunner, tmp_path: Path,
                                                             kafka_url: str) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("garbage")
    for url in ("rediss://127.0.0.1:16380/0", kafka_url.replace("kafka://", "kafka+ssl://")):
        env = _profile(tmp_path, f'[profiles.p]\nurl = "{url}"\nca_file = "{bad}"\n')
        assert str(bad) in error_line(qctl("stats", "-p", "p", "q", env=env), 2)


def test_management_url_with_credentials_is_used_and_masked(qctl: QctlRunner, rabbitmq_driver: RabbitMQDriver) -> None:
    rabbitmq = rabbitmq_driver
    name = rabbitmq.unique("mgmt-creds")
    rabbitmq.make_queue(name, plain([b"x"]))
    host = rabbitmq.management_url.split("://", 1)[1]
    anonymous_amqp = rabbitmq.amqp_url.replace("qctl:qctl-secret@", "qctl:amqp-pw-unused@")
    good = qctl("stats", "-u", rabbitmq.amqp_url, "--management-url", f"http://qctl:qctl-secret@{host}", "-o", "json",
                f"{name}*")
    assert good.rc == 0 and [row["queue"] for row in good.json()] == [name], good
    wrong = qctl("stats", "-u", anonymous_amqp, "--management-url", f"http://qctl:wrong-mgmt-pw@{host}", f"{name}*")
    line = error_line(wrong, 3)
    assert "check the user and password" in line and "--management-url http://HOST" not in line
    assert "wrong-mgmt-pw" not in wrong.out + wrong.err


def test_ipv6_without_a_closing_bracket_is_exit_2(qctl: QctlRunner) -> None:
    assert "unclosed" in error_line(qctl("stats", "-u", "redis://[::1:16379/0"), 2)


def test_two_urls_for_a_one_broker_command_are_exit_2(qctl: QctlRunner, redis_url: str) -> None:
    for command in (["peek", "q"], ["purge", "q", "--yes"], ["redrive", "q:dlq"], ["move", "a", "b"]):
        run = qctl(*command, "-u", redis_url, "-u", redis_url)
        assert "more than once" in error_line(run, 2)
