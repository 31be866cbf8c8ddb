"""What cron sees: several brokers in one run, repeated plain output for --watch, thresholds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from qctl.testing.driver import plain
from tests.conftest import QctlRunner


def test_several_brokers_in_one_stats_table(qctl: QctlRunner, redis_driver: Any, rabbitmq_driver: Any,
                                            kafka_driver: Any) -> None:
    drivers = (redis_driver, rabbitmq_driver, kafka_driver)
    prefix = redis_driver.unique("multi")
    for driver in drivers:
        driver.make_queue(f"{prefix}-{driver.capabilities.backend}", plain([b"a", b"b"]))
    urls = [arg for driver in drivers for arg in ("-u", driver.url)]
    run = qctl("stats", *urls, "-o", "json", f"{prefix}-*")
    assert run.rc == 0, run
    rows = run.json()
    assert sorted((row["backend"], row["queue"], row["depth"]) for row in rows) == sorted(
        (driver.capabilities.backend, f"{prefix}-{driver.capabilities.backend}", 2) for driver in drivers)
    broker = {row["backend"]: row["broker"] for row in rows}
    assert broker["rabbitmq"] == rabbitmq_driver.url.replace(":qctl-secret@", ":***@")
    table = qctl("stats", *urls, f"{prefix}-*")
    assert table.rc == 0, table
    lines = table.out.splitlines()
    assert lines[0].split()[:2] == ["BROKER", "QUEUE"] and len(lines) == 4
    assert "qctl-secret" not in table.out + run.out


def test_watch_without_a_terminal_repeats_plain_output(redis_url: str, clean_env: dict[str, str],
                                                       redis_driver: Any) -> None:
    name = redis_driver.unique("watch")
    redis_driver.make_queue(name, plain([b"x"] * 3))
    proc = subprocess.Popen([sys.executable, "-m", "qctl", "stats", "-u", redis_url, "--watch", "0.3", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("QUEUE") >= 3
    assert "\x1b[" not in out


def test_quiet_redrive_prints_only_data(qctl: QctlRunner, redis_driver: Any) -> None:
    source = redis_driver.unique("quiet")
    redis_driver.make_dead_letters(source, source + ":dlq", [b"1", b"2"])
    run = qctl("redrive", "-u", redis_driver.url, "-q", "--dry-run", "-o", "json", source + ":dlq")
    assert run.rc == 0, run
    assert run.err == ""
    assert run.json()["targets"] == {source: 2}
    assert redis_driver.contents(source + ":dlq") == [b"1", b"2"]  # a dry run moves nothing
    assert redis_driver.contents(source) == []
