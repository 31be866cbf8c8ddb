"""The error boundary for what no broker can show: a bug inside an adapter, and Ctrl-C.

A stand-in adapter raises; everything else (config, registry, rendering) is real.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from typer.testing import CliRunner

from qctl import registry
from qctl.adapter import Adapter
from qctl.cli import app
from qctl.models import QueueStats


class ExplodingAdapter(Adapter):
    backend = "redis"
    failure: BaseException = RuntimeError("boom while talking to redis://admin:sup3rsecret@db:6379/0")

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        raise self.failure

    def depth(self, queue: str) -> int:
        raise self.failure

    def peek(self, *args: Any) -> Any:
        raise self.failure

    def purge(self, *args: Any) -> Any:
        raise self.failure

    def reader(self, *args: Any) -> Any:
        raise self.failure

    def destination(self, *args: Any) -> Any:
        raise self.failure


@pytest.fixture()
def exploding(monkeypatch: pytest.MonkeyPatch) -> type[ExplodingAdapter]:
    monkeypatch.setattr(registry, "adapter_class", lambda scheme: ExplodingAdapter)
    monkeypatch.delenv("QCTL_DEBUG", raising=False)
    return ExplodingAdapter


def test_internal_error_is_one_line_exit_1_without_traceback(exploding: type[ExplodingAdapter]) -> None:
    result = CliRunner().invoke(app, ["stats", "-u", "redis://h:1/0"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, the hint included
    assert lines[0].startswith("qctl: error: internal error: RuntimeError: boom while talking to "
                               "redis://admin:***@db:6379/0 (hint: rerun with --debug")
    assert "Traceback" not in result.stderr and "sup3rsecret" not in result.output


def test_debug_shows_the_traceback_with_passwords_masked(exploding: type[ExplodingAdapter]) -> None:
    result = CliRunner().invoke(app, ["stats", "-u", "redis://h:1/0", "--debug"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "sup3rsecret" not in result.stderr


def test_ctrl_c_exits_130_saying_nothing_was_lost(exploding: type[ExplodingAdapter],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExplodingAdapter, "failure", KeyboardInterrupt())
    result = CliRunner().invoke(app, ["redrive", "-u", "redis://h:1/0", "q:dlq"])
    assert result.exit_code == 130
    assert result.stderr.strip() == "qctl: error: interrupted; nothing was lost"
