"""Bad input: one line on stderr, the contract's exit code, never a traceback or a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import QctlRunner


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qctl: error: "), err
    return lines[0]


@pytest.mark.parametrize(("args", "needle"), [
    (["stats", "-u", "rabbitmq://guest:hunter22@h/"], "did you mean amqp://"),
    (["stats", "-u", "localhost:6379"], "malformed URL"),
    (["stats", "-u", "redis://h:70000/0"], "bad port"),
    (["peek", "-u", "redis://h/0", "q", "--count", "0"], "--count"),
    (["stats", "--no-such-flag"], "No such option"),
    (["stats", "-o", "yaml", "-u", "redis://h/0"], "unknown output format"),
    (["peek", "-o", "prom", "-u", "redis://h/0", "q"], "unknown output format"),
    (["peek", "--since", "yesterday", "-u", "redis://h/0", "q"], "ISO 8601"),
    (["stats", "-p", "ghost"], "unknown profile 'ghost'"),
])
def test_usage_errors_exit_2(qctl: QctlRunner, args: list[str], needle: str) -> None:
    run = qctl(*args)
    assert run.rc == 2, run
    line = _one_error_line(run.err)
    assert needle in line
    assert "hunter22" not in run.err + run.out
    assert run.out == ""


def test_unreadable_config_exits_2(qctl: QctlRunner, tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[profiles.x\nurl='redis://h'")
    run = qctl("stats", env={"QCTL_CONFIG": str(bad)})
    assert run.rc == 2, run
    assert "not valid TOML" in _one_error_line(run.err)
    missing = qctl("stats", env={"QCTL_CONFIG": str(tmp_path / "nope.toml")})
    assert missing.rc == 2 and "does not exist" in _one_error_line(missing.err)


def test_config_list_and_show_mask_secrets(qctl: QctlRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('default_profile = "a"\n[profiles.a]\nurl = "amqp://ops:inline-pw@rabbit/%2F"\n'
                      '[profiles.b]\nurl = "redis://cache:6379/0"\npassword_env = "B_PW"\nprotected = ["orders*"]\n')
    config.chmod(0o600)
    env = {"QCTL_CONFIG": str(config), "B_PW": "env-pw-123"}
    listing = qctl("config", "list", "-o", "json", env=env)
    assert listing.rc == 0, listing
    rows = {row["name"]: row for row in listing.json()}
    assert rows["a"]["url"] == "amqp://ops:***@rabbit/%2F" and rows["a"]["default"] is True
    shown = qctl("config", "show", "b", "-o", "json", env=env)
    assert shown.rc == 0, shown
    assert shown.json()["url"] == "redis://:***@cache:6379/0"
    assert shown.json()["password_source"] == "env B_PW"
    assert shown.json()["protected"] == ["orders*"]
    table = qctl("config", "show", "a", env=env)
    for run in (listing, shown, table):
        assert "inline-pw" not in run.out + run.err and "env-pw-123" not in run.out + run.err


def test_world_readable_config_with_password_warns_on_stderr(qctl: QctlRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.a]\nurl = "amqp://ops:inline-pw@rabbit/%2F"\n')
    config.chmod(0o644)
    run = qctl("config", "list", env={"QCTL_CONFIG": str(config)})
    assert run.rc == 0
    assert "qctl: warning:" in run.err and "readable by others" in run.err
    assert "inline-pw" not in run.err + run.out


def test_help_and_version(qctl: QctlRunner) -> None:
    assert qctl("--version").out.startswith("qctl ")
    run = qctl("--help")
    assert run.rc == 0
    for command in ("stats", "peek", "purge", "redrive", "restore", "config", "completion"):
        assert command in run.out
