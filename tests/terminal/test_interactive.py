"""The interactive parts, driven in a real terminal under tmux (send-keys, capture-pane)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.terminal.conftest import Tmux


@pytest.fixture()
def orders(redis_url: str) -> Iterator[tuple[str, object]]:
    import redis

    client = redis.Redis.from_url(redis_url)
    name = f"tty-orders-{uuid.uuid4().hex[:6]}"
    client.lpush(name, *[f"m{i}".encode() for i in range(7)])
    yield name, client
    client.delete(name)


def test_typed_confirmation_purges(tmux: Tmux, redis_url: str, orders: tuple[str, object]) -> None:
    name, client = orders
    tmux.start("purge", "-u", redis_url, name)
    screen = tmux.wait_for(lambda s: "type the queue name to confirm" in s)
    assert "about to purge 7 message(s)" in screen
    tmux.send(name, "Enter")
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=0" in screen, screen
    assert client.llen(name) == 0  # type: ignore[attr-defined]


def test_wrong_confirmation_purges_nothing(tmux: Tmux, redis_url: str, orders: tuple[str, object]) -> None:
    name, client = orders
    tmux.start("purge", "-u", redis_url, name)
    tmux.wait_for(lambda s: "type the queue name to confirm" in s)
    tmux.send("orders-typo", "Enter")
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=2" in screen and "not confirmed" in screen, screen
    assert client.llen(name) == 7  # type: ignore[attr-defined]


def test_stats_watch_redraws_until_ctrl_c(tmux: Tmux, redis_url: str, orders: tuple[str, object]) -> None:
    name, client = orders
    tmux.start("stats", "-u", redis_url, "--watch", "0.5", name)
    tmux.wait_for(lambda s: name in s and " 7 " in s)
    client.lpush(name, *[b"more"] * 5)  # type: ignore[attr-defined]
    screen = tmux.wait_for(lambda s: " 12 " in s)
    assert screen.count(name) == 1, "a live table redraws in place instead of scrolling"
    tmux.send("C-c")
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=0" in screen, screen


def test_redrive_draws_a_progress_bar_on_a_terminal(tmux: Tmux, redis_url: str, orders: tuple[str, object]) -> None:
    name, client = orders
    dlq = f"{name}:dlq"
    client.lpush(dlq, *[f"d{i}".encode() for i in range(300)])  # type: ignore[attr-defined]
    tmux.start("redrive", "-u", redis_url, dlq, "--rate", "150")
    during = tmux.wait_for(lambda s: "/300" in s and "EXIT=" not in s)
    assert f"redrive {dlq}" in during
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "300/300" in screen and "EXIT=0" in screen, screen
    assert client.llen(name) == 307  # type: ignore[attr-defined]


def test_purge_backup_draws_a_progress_bar_on_a_terminal(tmux: Tmux, redis_url: str, orders: tuple[str, object],
                                                         tmp_path: Path) -> None:
    name, client = orders
    backup = tmp_path / "backup.jsonl"
    tmux.start("purge", "-u", redis_url, name, "--yes", "--backup", str(backup))
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "7/7" in screen and "EXIT=0" in screen, screen
    assert len(backup.read_text().splitlines()) == 1 + 7  # the format line, then a line each
    assert client.llen(name) == 0  # type: ignore[attr-defined]
