"""Connection failures exit 3 within --timeout; usage errors exit 2; no password is ever printed."""

from __future__ import annotations

import time

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver


def test_unreachable_bootstrap_exits_3_within_timeout(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    for command in (["stats"], ["peek", "t"], ["purge", "t", "--yes"], ["redrive", "t.DLT"]):
        started = time.monotonic()
        run = qctl(*command, "-u", kafka.unreachable_url(), "--timeout", "2")
        elapsed = time.monotonic() - started
        assert run.rc == 3, run
        assert elapsed < 2 + 3, (command, elapsed)  # + interpreter start
        assert run.err.startswith("qctl: error:") and "Traceback" not in run.err


def test_wrong_password_exits_3_and_is_masked(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    run = qctl("stats", "-u", kafka.bad_password_url(), "--timeout", "3")
    assert run.rc == 3, run
    assert "wrong-password" not in run.err + run.out


def test_bad_sasl_mechanism_is_a_usage_error(kafka: KafkaDriver, qctl: QctlRunner) -> None:
    run = qctl("stats", "-u", f"kafka://u:p@{kafka.bootstrap}?sasl_mechanism=MD5")
    assert run.rc == 2, run
