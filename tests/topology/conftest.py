"""Fixtures for topology tests: TLS profiles, a second CA, and checks that no secret is ever printed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, brokers_up

PASSWORD = "qctl-secret"  # the harness's password for every TLS/auth listener
WRONG_PASSWORD = "wrong-Pass-8d1f"  # never valid anywhere: must never be printed either


@pytest.fixture(scope="session")
def topology_env() -> dict[str, str]:
    return brokers_up("rabbitmq", "kafka", "redis-mtls")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second CA (made here with openssl) that signed none of the harness's listeners."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "ca.key"),
                    "-out", str(folder / "ca.crt"), "-days", "2", "-subj", "/CN=qctl-test-other-ca"],
                   check=True, capture_output=True, timeout=60)
    return folder / "ca.crt"


def toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else ("true" if value is True else "false")


def write_profiles(config_home: Path, profiles: Mapping[str, Mapping[str, Any]]) -> Path:
    """``$XDG_CONFIG_HOME/qctl/config.toml`` with these ``[profiles.NAME]`` tables (mode 600)."""
    path = config_home / "qctl" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, table in profiles.items():
        lines.append(f"[profiles.{json.dumps(name)}]")
        lines += [f"{key} = {toml(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def secrets_absent(run: Run, secrets: Iterable[str]) -> None:
    """No secret in stdout or stderr, in any form (raw, percent-encoded)."""
    for secret in secrets:
        for form in {secret, secret.replace("-", "%2D")}:
            assert form not in run.out and form not in run.err, f"secret {secret!r} printed:\n{run!r}"
    assert "PRIVATE KEY" not in run.out + run.err, run


def one_line_error(run: Run, code: int) -> str:
    """The run exited ``code`` with exactly one line on stderr, ``qctl: error: ...``; returns it."""
    assert run.rc == code, run
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("qctl: error: "), run
    assert "Traceback" not in run.err
    return lines[0]


def debug_error(run: Run, code: int) -> str:
    """With --debug: the same exit code; a traceback may come first, the error line last."""
    assert run.rc == code, run
    last = run.err.rstrip("\n").splitlines()[-1]
    assert last.startswith("qctl: error: "), run
    return last


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``slow`` variants here (each takes minutes of broker restarts) run only when asked for.

    The normal run keeps tests/topology to a few minutes; ``pytest -m slow tests/topology`` (or any
    ``-m`` naming slow) runs them.
    """
    if "slow" in (config.getoption("markexpr") or ""):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="slow variant: run with -m slow")
    for item in items:
        if item.get_closest_marker("slow") and here in item.path.parents:
            item.add_marker(skip)
