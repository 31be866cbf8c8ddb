"""Connecting: ACL users, wrong passwords, unreachable and silent servers, unix sockets, TLS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import QctlRunner
from tests.redis.driver import RedisDriver


def test_acl_user_works_and_wrong_password_exits_3_without_leaking(qctl: QctlRunner, redis_env: dict[str, str],
                                                                  r: redis.Redis, name: str) -> None:
    r.lpush(name, b"x")
    acl = redis_env["QCTL_TEST_REDIS_ACL_URL"]
    run = qctl("stats", "-u", acl, name, "-o", "json")
    assert run.rc == 0 and run.json()[0]["depth"] == 1, run
    bad = RedisDriver(redis_env).bad_password_url()
    run = qctl("stats", "-u", bad, name, "--debug")
    assert run.rc == 3, run
    assert "wrong-password" not in run.err + run.out and "authentication failed" in run.err, run


def test_unreachable_exits_3_quickly(qctl: QctlRunner, redis_env: dict[str, str]) -> None:
    started = time.monotonic()
    run = qctl("stats", "-u", RedisDriver(redis_env).unreachable_url(), "--timeout", "2")
    assert run.rc == 3 and run.err.startswith("qctl: error:"), run
    assert time.monotonic() - started < 5


def test_silent_server_times_out_with_exit_3(qctl: QctlRunner) -> None:
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        started = time.monotonic()
        run = qctl("peek", "-u", f"redis://127.0.0.1:{port}/0", "q", "--timeout", "1")
    assert run.rc == 3, run
    assert time.monotonic() - started < 6


@pytest.fixture()
def unix_redis(tmp_path: Path) -> Iterator[Path]:
    """A redis-server of our own listening only on a unix socket (stopped by its pid afterwards)."""
    server = shutil.which("redis-server")
    assert server, "redis-server is installed by tools/brokers"
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen([server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unix_socket_with_db(qctl: QctlRunner, unix_redis: Path) -> None:
    client = redis.Redis(unix_socket_path=str(unix_redis), db=3)
    client.lpush("jobs", b"a", b"b")
    run = qctl("stats", "-u", f"unix://{unix_redis}?db=3", "-o", "json")
    assert run.rc == 0 and [(row["queue"], row["depth"]) for row in run.json()] == [("jobs", 2)], run
    assert qctl("stats", "-u", f"unix://{unix_redis}?db=0", "-o", "json").json() == []


def test_tls_with_ca_from_profile_or_query(qctl: QctlRunner, tls_env: dict[str, str], tmp_path: Path) -> None:
    url, ca = tls_env["QCTL_TEST_REDISS_URL"], tls_env["QCTL_TEST_REDIS_CA_FILE"]
    run = qctl("stats", "-u", f"{url}?ssl_ca_certs={ca}", "-o", "json")
    assert run.rc == 0, run
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.tls]\nurl = "{url}"\nca_file = "{ca}"\n')
    assert qctl("stats", "-p", "tls", "-o", "json", env={"QCTL_CONFIG": str(config)}).rc == 0
    # Without the CA the server's certificate cannot be verified: cannot connect, exit 3.
    assert qctl("stats", "-u", url, "--timeout", "3").rc == 3
    assert qctl("stats", "-u", f"{url}?ssl_cert_reqs=none", "-o", "json").rc == 0
