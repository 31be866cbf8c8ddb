"""A real terminal for the interactive tests: tmux with send-keys and capture-pane."""

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

    def screen(self, *, escapes: bool = False) -> str:
        """The pane's text; with ``escapes`` its colours too (capture-pane -e)."""
        flags = ["-p", "-e"] if escapes else ["-p"]
        return subprocess.run(["tmux", "capture-pane", *flags, "-t", self.session], check=True,
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
    env["COLUMNS"] = "160"  # the pane's width: tmux panes of other sessions on a shared server can shrink it
    terminal = Tmux(env)
    yield terminal
    terminal.close()
