"""qctl as a real process, for end-to-end tests: what it printed, what it exited with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Run:
    """A finished qctl process."""

    args: list[str]
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def jsonl(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"qctl {' '.join(self.args)} -> rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"


QctlRunner = Callable[..., Run]


def clean_environment(config_home: str) -> dict[str, str]:
    """The process environment without the caller's qctl settings, its config in ``config_home``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QCTL_")}
    env["XDG_CONFIG_HOME"] = config_home
    env["NO_COLOR"] = "1"
    env.pop("COLUMNS", None)
    # No test may look for AWS instance credentials: that is traffic to 169.254.169.254, off this machine.
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def runner(env: Mapping[str, str]) -> QctlRunner:
    """``run("stats", "-u", url, "-o", "json")`` runs ``python -m qctl`` and waits."""

    def run(*args: str, input: str | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 120) -> Run:
        proc = subprocess.run([sys.executable, "-m", "qctl", *args], input=input, capture_output=True,
                              text=True, env={**base, **(env or {})}, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
        return Run(list(args), proc.returncode, proc.stdout, proc.stderr)

    base = dict(env)
    return run


def interrupted(env: Mapping[str, str], args: list[str], started: Callable[[], bool], *,
                signal_number: int = signal.SIGINT, timeout: float = 120) -> Run:
    """Run qctl, send it ``signal_number`` once ``started()`` is true, and wait for it to finish."""
    proc = subprocess.Popen([sys.executable, "-m", "qctl", *args], env=dict(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not started():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            raise AssertionError(f"qctl ended (rc={proc.returncode}) before the signal could be sent:\n{out}\n{err}")
        time.sleep(0.02)
    proc.send_signal(signal_number)
    out, err = proc.communicate(timeout=timeout)
    return Run(args, proc.returncode, out, err)
