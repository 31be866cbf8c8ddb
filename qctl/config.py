"""Profiles from the TOML config file, and which broker a command talks to.

Precedence (the contract): ``-u``/``-p`` flags, then ``QCTL_URL``/``QCTL_PROFILE``,
then the file's ``default_profile``, then ``redis://localhost:6379/0``.  A URL
given beside a profile replaces only the profile's URL; the profile still
supplies passwords, TLS files and naming rules.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qctl import urls
from qctl.deadletter import DeadLetterNaming
from qctl.errors import ConfigError, UsageError
from qctl.options import ConnectOptions, TLSFiles
from qctl.urls import BrokerURL

DEFAULT_URL = "redis://localhost:6379/0"
PROFILE_KEYS = frozenset({
    "url", "password_env", "password_file", "management_url", "ca_file", "cert_file", "key_file",
    "verify", "dead_letter", "protected", "list_end", "include_internal", "description", "layout",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    url: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    management_url: str | None = None
    tls: TLSFiles = field(default_factory=TLSFiles)
    dead_letter_suffixes: tuple[str, ...] = ()
    dead_letter_prefixes: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    list_end: str | None = None
    include_internal: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)

    def is_protected(self, queue: str) -> bool:
        return any(fnmatch.fnmatchcase(queue, pattern) for pattern in self.protected)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    path: Path | None
    default_profile: str | None = None
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def config_path() -> Path:
    explicit = os.environ.get("QCTL_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qctl" / "config.toml"


def load(path: Path | None = None) -> Config:
    """Read the config file; a missing default file is an empty config, not an error."""
    path = path or config_path()
    explicit = bool(os.environ.get("QCTL_CONFIG"))
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {str(path)!r} (from QCTL_CONFIG) does not exist")
        return Config(path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    tables = data.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"config file {str(path)!r}: 'profiles' must be a table of [profiles.NAME]")
    profiles = {name: _profile(name, table, path) for name, table in tables.items()}
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"config file {str(path)!r}: default_profile must be a profile name (a string)")
    if default is not None and default not in profiles:
        raise ConfigError(f"config file {str(path)!r}: default_profile {default!r} is not a profile")
    return Config(path=path, default_profile=default, profiles=profiles,
                  warnings=tuple(_permission_warnings(path, profiles)))


def _profile(name: str, table: Any, path: Path) -> Profile:
    where = f"config file {str(path)!r}, profile {name!r}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    from qctl.registry import backend_names

    backends = backend_names()
    unknown = set(table) - PROFILE_KEYS - backends
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}",
                          hint="known keys: " + ", ".join(sorted(PROFILE_KEYS)) + "; and a table per backend: "
                               + ", ".join(sorted(backends)))
    for backend in backends & set(table):
        if not isinstance(table[backend], dict):
            raise ConfigError(f"{where}: {backend} must be a table ([profiles.{name}.{backend}])")
    dead = table.get("dead_letter", {})
    if not isinstance(dead, dict):
        raise ConfigError(f"{where}: dead_letter must be a table with suffixes/prefixes lists")
    list_end = table.get("list_end")
    if list_end not in (None, "left", "right"):
        raise ConfigError(f"{where}: list_end must be 'left' or 'right'")
    url = _opt_str(table, "url", where)
    if url:
        try:
            urls.parse(url)  # registers its password for redaction; fails early
        except UsageError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return Profile(
        name=name,
        url=url,
        password_env=_opt_str(table, "password_env", where),
        password_file=_opt_str(table, "password_file", where),
        management_url=_opt_str(table, "management_url", where),
        tls=TLSFiles(ca_file=_opt_str(table, "ca_file", where), cert_file=_opt_str(table, "cert_file", where),
                     key_file=_opt_str(table, "key_file", where), verify=bool(table.get("verify", True))),
        dead_letter_suffixes=_str_tuple(dead.get("suffixes", ()), where),
        dead_letter_prefixes=_str_tuple(dead.get("prefixes", ()), where),
        protected=_str_tuple(table.get("protected", ()), where),
        list_end=list_end,
        include_internal=bool(table.get("include_internal", False)),
        raw=table,
    )


def _opt_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _permission_warnings(path: Path, profiles: Mapping[str, Profile]) -> list[str]:
    """Warn when a file readable by others holds a password (the config or a password_file)."""
    warnings = []
    holds_password = any(p.url and urls.parse(p.url).password for p in profiles.values())
    if holds_password and _readable_by_others(path):
        warnings.append(f"config file {str(path)!r} holds a password and is readable by others "
                        f"(chmod 600 {path})")
    for profile in profiles.values():
        if profile.password_file:
            secret = Path(profile.password_file).expanduser()
            if secret.exists() and _readable_by_others(secret):
                warnings.append(f"password_file {str(secret)!r} of profile {profile.name!r} is readable "
                                f"by others (chmod 600 {secret})")
    return warnings


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The broker a command talks to, and where that choice came from."""

    options: ConnectOptions
    profile: Profile | None
    source: str  # "url", "profile NAME" or "default"


def resolve(config: Config, *, url: str | None = None, profile: str | None = None,
            management_url: str | None = None, timeout: float = 10.0) -> Target:
    if url is not None and not url.strip():
        raise UsageError("-u/--url is empty", hint="give a broker URL, e.g. -u redis://localhost:6379/0")
    if profile is not None and not profile.strip():
        raise UsageError("-p/--profile is empty", hint="give a profile name ('qctl config list' shows them)")
    env_url = os.environ.get("QCTL_URL")
    if env_url is not None and not env_url.strip() and url is None and profile is None:
        raise UsageError("QCTL_URL is set but empty", hint="unset it, or set it to a broker URL")
    chosen = profile or (None if url else os.environ.get("QCTL_PROFILE") or None)
    url = url or (None if profile else env_url)
    if chosen is None and url is None:
        chosen = config.default_profile
    selected: Profile | None = None
    if chosen is not None:
        if chosen not in config.profiles:
            known = ", ".join(sorted(config.profiles)) or "none"
            where = f" in {str(config.path)!r}" if config.path else f" (no config file at {str(config_path())!r})"
            raise ConfigError(f"unknown profile {chosen!r}{where}", hint=f"profiles: {known}")
        selected = config.profiles[chosen]
    text = url or (selected.url if selected else None) or DEFAULT_URL
    if selected and not url and not selected.url:
        raise ConfigError(f"profile {selected.name!r} has no url")
    parsed = urls.parse(text)
    if selected and parsed.password is None:
        parsed = parsed.with_password(_profile_password(selected))
    source = f"profile {selected.name}" if selected else ("url" if url else "default")
    return Target(options=_options(parsed, selected, management_url, timeout), profile=selected, source=source)


def _profile_password(profile: Profile) -> str | None:
    if profile.password_env:
        value = os.environ.get(profile.password_env)
        if value is None:
            raise ConfigError(f"profile {profile.name!r}: environment variable {profile.password_env} is not set")
        return value
    if profile.password_file:
        try:
            return Path(profile.password_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"profile {profile.name!r}: cannot read password_file: {exc.strerror}") from None
    return None


def _options(url: BrokerURL, profile: Profile | None, management_url: str | None,
             timeout: float) -> ConnectOptions:
    naming = DeadLetterNaming()
    if profile:
        naming = naming.extended(profile.dead_letter_suffixes, profile.dead_letter_prefixes)
    list_end = url.query.get("list_end") or (profile.list_end if profile else None) or "right"
    if list_end not in ("left", "right"):
        raise ConfigError(f"list_end must be 'left' or 'right', not {list_end!r}")
    from qctl.registry import backend_of

    raw: Mapping[str, Any] = profile.raw if profile else {}
    backend_table = raw.get(backend_of(url.scheme) or "", {})
    return ConnectOptions(
        url=url,
        timeout=timeout,
        management_url=management_url or url.query.get("management") or (profile.management_url if profile else None),
        tls=profile.tls if profile else TLSFiles(),
        dead_letter=naming,
        list_end=list_end,
        include_internal=profile.include_internal if profile else False,
        backend_settings=backend_table if isinstance(backend_table, Mapping) else {},
        settings=raw,
    )
