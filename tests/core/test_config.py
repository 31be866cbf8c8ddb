"""Profiles, precedence and secrets in the config file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qctl import config
from qctl.errors import ConfigError

CONFIG = """
default_profile = "local"

[profiles.local]
url = "redis://127.0.0.1:6379/0"
protected = ["orders*", "payments"]

[profiles.rabbit]
url = "amqp://ops@rabbit.internal:5672/%2F"
password_env = "RABBIT_PW"
management_url = "https://rabbit.internal:15671"

[profiles.rabbit.dead_letter]
suffixes = [".failed"]

[profiles.kafka]
url = "kafka://k1:9092"
password_file = "{pwfile}"
"""


@pytest.fixture()
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pwfile = tmp_path / "kafka.pw"
    pwfile.write_text("from-file-secret\n")
    pwfile.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(pwfile=pwfile))
    path.chmod(0o600)
    monkeypatch.setenv("QCTL_CONFIG", str(path))
    for key in ("QCTL_URL", "QCTL_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return path


def test_default_profile_applies_without_flags(config_file: Path) -> None:
    target = config.resolve(config.load())
    assert str(target.options.url) == "redis://127.0.0.1:6379/0"
    assert target.profile is not None and target.profile.name == "local"


def test_flag_url_beats_env_and_default(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QCTL_URL", "redis://env-host:1/0")
    target = config.resolve(config.load(), url="redis://flag-host:2/0")
    assert target.options.url.host == "flag-host"
    assert target.profile is None


def test_env_url_beats_default_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QCTL_URL", "redis://env-host:1/0")
    assert config.resolve(config.load()).options.url.host == "env-host"


def test_env_profile_and_password_env(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QCTL_PROFILE", "rabbit")
    monkeypatch.setenv("RABBIT_PW", "pw-from-env")
    target = config.resolve(config.load())
    assert target.options.url.password == "pw-from-env"
    assert "pw-from-env" not in str(target.options.url)
    assert target.options.management_url == "https://rabbit.internal:15671"
    assert target.options.dead_letter.origin("orders.failed") == "orders"


def test_password_file(config_file: Path) -> None:
    target = config.resolve(config.load(), profile="kafka")
    assert target.options.url.password == "from-file-secret"


def test_builtin_default_without_any_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("QCTL_CONFIG", "QCTL_URL", "QCTL_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert str(config.resolve(config.load()).options.url) == "redis://localhost:6379/0"


def test_unknown_profile(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        config.resolve(config.load(), profile="nope")


def test_missing_password_env(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="RABBIT_PW"):
        config.resolve(config.load(), profile="rabbit")


@pytest.mark.parametrize("body", ["not toml = = =", "[profiles.x]\nurl = 5\n", "[profiles.x]\nurll = 'redis://h'\n",
                                  "default_profile = 'ghost'\n"])
def test_bad_config_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    monkeypatch.setenv("QCTL_CONFIG", str(path))
    with pytest.raises(ConfigError):
        config.load()


def test_protected_globs(config_file: Path) -> None:
    profile = config.load().profiles["local"]
    assert profile.is_protected("orders.eu")
    assert profile.is_protected("payments")
    assert not profile.is_protected("emails")


def test_world_readable_file_with_password_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles.p]\nurl = "redis://u:inline-secret@h:1/0"\n')
    os.chmod(path, 0o644)
    monkeypatch.setenv("QCTL_CONFIG", str(path))
    warnings = config.load().warnings
    assert len(warnings) == 1 and "readable by others" in warnings[0]
    assert "inline-secret" not in warnings[0]
    os.chmod(path, 0o600)
    assert config.load().warnings == ()


def test_a_profile_carries_each_backend_its_own_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.aws]\nurl = "sqs://eu-west-1"\n[profiles.aws.sqs]\nregion = "eu-west-1"\n'
                    'aws_profile = "ops"\n[profiles.aws.kafka]\nignored = true\n')
    monkeypatch.setenv("QCTL_CONFIG", str(path))
    options = config.resolve(config.load(), profile="aws").options
    assert options.backend_settings == {"region": "eu-west-1", "aws_profile": "ops"}
    assert options.setting("aws_profile") == "ops" and options.setting("missing", 7) == 7
    with_query = config.resolve(config.load(), profile="aws", url="sqs://eu-west-1?aws_profile=adhoc").options
    assert with_query.setting("aws_profile") == "adhoc"  # the URL's query wins over the profile's table
    path.write_text('[profiles.x]\nurl = "redis://h"\nsqs = "not a table"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        config.load()
    path.write_text('[profiles.x]\nurl = "redis://h"\n[profiles.x.nosuchbackend]\na = 1\n')
    with pytest.raises(ConfigError, match="unknown key 'nosuchbackend'"):
        config.load()
