"""The interactive parts, driven in a real terminal under tmux (send-keys, capture-pane)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.session = f"qctl-{uuid.uuid4().hex[:8]}"
        self.env = env

    def start(self, *args: str) -> None:
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        command = f"cd {shlex.quote(str(REPO))} && env {exports} {shlex.quote(sys.executable)} -m qctl " + \
            " ".join(shlex.quote(arg) for arg in args) + "; echo EXIT=$?; sleep 30"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "160", "-y", "40", command],
                       check=True)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"screen never matched:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


@pytest.fixture()
def tmux(clean_env: dict[str, str]) -> Iterator[Tmux]:
    env = {key: clean_env[key] for key in ("PATH", "HOME", "XDG_CONFIG_HOME") if key in clean_env}
    env["TERM"] = "xterm-256color"
    terminal = Tmux(env)
    yield terminal
    terminal.close()


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
