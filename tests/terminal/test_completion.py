"""Queue names on Tab, through the real shells (bash and zsh under tmux), against live brokers.

And with an unreachable broker: the completion returns within 1.5 s and completes nothing, through the
shells (a closed port, and a port that accepts TCP and never answers) and through the entry point.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.terminal.conftest import REPO

BIN = Path(sys.executable).parent


class Shell:
    """An interactive shell in a tmux pane, with qctl on PATH and its completion script loaded."""

    def __init__(self, shell: str, home: Path) -> None:
        self.session = f"qctl-sh-{uuid.uuid4().hex[:8]}"
        env = f"env -i PATH={BIN}:/usr/bin:/bin HOME={home} XDG_CACHE_HOME={home}/cache TERM=xterm-256color"
        argv = {"bash": "bash --norc --noprofile", "zsh": "zsh -f"}[shell]
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "200", "-y", "50",
                        f"cd {shlex.quote(str(REPO))} && {env} {argv}"], check=True)
        if shell == "bash":
            self.type("source completions/qctl.bash", "Enter")
        else:
            self.type("autoload -Uz compinit && compinit -u && source completions/_qctl", "Enter")
        self.type("clear", "Enter")
        time.sleep(0.3)

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], check=True, capture_output=True,
                              text=True).stdout

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


@pytest.fixture()
def queues(redis_url: str) -> Iterator[tuple[str, list[str]]]:
    client = redis.Redis.from_url(redis_url)
    prefix = f"tabq{uuid.uuid4().hex[:5]}"
    names = [f"{prefix}-orders", f"{prefix}-orders.dlq", f"{prefix}-payments"]
    for name in names:
        client.lpush(name, b"x")
    yield prefix, names
    client.delete(*names)


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_tab_lists_the_brokers_queues(shell: str, queues: tuple[str, list[str]], redis_url: str,
                                      tmp_path: Path) -> None:
    prefix, _ = queues
    terminal = Shell(shell, tmp_path)
    try:
        terminal.type(f"qctl peek -u {redis_url} {prefix}-or", "Tab")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and f"{prefix}-orders.dlq" not in terminal.screen():
            time.sleep(1.0)  # one completion at a time: readline drops a Tab typed while one runs
            terminal.type("Tab")
        screen = terminal.screen()
        assert f"{prefix}-orders.dlq" in screen and f"{prefix}-payments" not in screen, screen
    finally:
        terminal.close()
    cached = list((tmp_path / "cache" / "qctl").glob("queues-*.json"))
    assert cached and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in cached)
    assert all("redis://" not in path.read_text() for path in cached)  # names only, no URL, no secret


def _complete(words: str, env: dict[str, str]) -> tuple[list[str], float]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "qctl"], capture_output=True, text=True, timeout=30,
                          env={**env, "COMP_WORDS": words, "COMP_CWORD": str(cword),
                               "_QCTL_COMPLETE": "complete_bash"})
    return proc.stdout.split(), time.monotonic() - started


def test_a_profile_typed_first_is_used(queues: tuple[str, list[str]], redis_url: str, tmp_path: Path) -> None:
    prefix, _ = queues
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.local]\nurl = "{redis_url}"\n')
    env = {**os.environ, "QCTL_CONFIG": str(config), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    got, _ = _complete(f"qctl redrive -p local {prefix}-orders", env)
    assert sorted(got) == [f"{prefix}-orders", f"{prefix}-orders.dlq"]


def test_an_unreachable_broker_completes_nothing_within_a_second_and_a_half(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for url in ("redis://10.255.255.1:6379/0", "amqp://u:p@10.255.255.1:5672/%2F", "kafka://10.255.255.1:9092"):
        got, took = _complete(f"qctl peek -u {url} ord", env)
        assert got == [] and took < 1.5, (url, got, took)


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the kernel completes the handshake for the backlog) and
    never answers: a broker that hangs, not one that refuses."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # never accept()ed, never read, never written
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def unreachable_urls(port: int) -> list[str]:
    """Every backend's URL on ``port`` (RabbitMQ's management API too)."""
    return [f"redis://127.0.0.1:{port}/0", f"amqp://u:p@127.0.0.1:{port}/%2F?management=http://127.0.0.1:{port}",
            f"kafka://127.0.0.1:{port}", f"sqs+http://127.0.0.1:{port}", f"mqtt://127.0.0.1:{port}"]


def wait_ready(terminal: Shell) -> None:
    """Until the shell has run its start-up lines and reads keys itself: a key typed earlier is echoed by the
    terminal (a Tab as spaces), not taken by readline or zle."""
    terminal.type("echo ready-$((6 * 7))", "Enter")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = [row.strip() for row in terminal.screen().splitlines() if row.strip()]
        if "ready-42" in shown and shown[-1] != "ready-42":  # printed, and the prompt is back
            return
        time.sleep(0.05)
    raise AssertionError(f"the shell never got ready:\n{terminal.screen()}")


def tab_then_mark(terminal: Shell, line: str, word: str) -> tuple[str, float]:
    """Type ``line``, press Tab, then type a marker key; return the line as shown and how long until the marker
    showed.  Readline and zle take keys in order, so the marker appears only once the completion has returned:
    the time is how long the operator's shell was held."""
    terminal.type("C-u", line)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not terminal.screen().rstrip().endswith(word):
        time.sleep(0.02)
    started = time.monotonic()
    terminal.type("Tab", "Z")
    deadline = started + 10
    while time.monotonic() < deadline:
        shown = [row for row in terminal.screen().splitlines() if row.strip()]
        if shown and shown[-1].rstrip().endswith("Z"):
            return shown[-1].rstrip(), time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"the shell never took the key after Tab:\n{terminal.screen()}")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_tab_on_an_unreachable_broker_returns_within_a_second_and_a_half_with_nothing(
        shell: str, tmp_path: Path) -> None:
    terminal = Shell(shell, tmp_path)
    try:
        wait_ready(terminal)
        # The control: Tab runs qctl's completion and its answer lands before the marker (so the quick,
        # empty returns below are qctl's answers, not a Tab the shell ignored).  An option, not a queue:
        # a live listing may itself miss the budget on a loaded machine.
        shown, _took = tab_then_mark(terminal, "qctl peek --cou", "--cou")
        assert shown.endswith("--count Z"), terminal.screen()
        with silent_port() as silent:
            for port, how in ((closed_port(), "refused"), (silent, "silent")):
                for url in unreachable_urls(port):
                    typed = f"qctl peek -u {url} ordq"
                    shown, took = tab_then_mark(terminal, typed, "ordq")
                    assert shown.endswith(typed + "Z"), (how, url, terminal.screen())  # completed nothing
                    assert took < 1.5, (how, url, took)
    finally:
        terminal.close()


def test_a_slow_start_up_leaves_the_lookup_less_time() -> None:
    from qctl import completing

    # This process started long before WALL seconds ago: a completion that took as long to start gets FLOOR.
    assert completing._budget() == completing.FLOOR
    probe = [sys.executable, "-c", "from qctl import completing; print(completing._budget())"]
    assert float(subprocess.run(probe, capture_output=True, text=True, check=True).stdout) > completing.FLOOR
