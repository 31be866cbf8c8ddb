"""``qctl config list`` / ``config show``: profiles as resolved, secrets masked."""

from __future__ import annotations

from typing import Any

from qctl import config, output
from qctl.errors import ConfigError
from qctl.urls import redact


def list_profiles(fmt: str) -> None:
    loaded = config.load()
    for warning in loaded.warnings:
        output.warn(warning)
    records = [{
        "name": profile.name,
        "url": str(config.resolve(loaded, profile=profile.name).options.url) if profile.url else None,
        "default": profile.name == loaded.default_profile,
        "protected": list(profile.protected),
    } for profile in loaded.profiles.values()]
    output.rows(records, fmt, ["name", "url", "default", "protected"])


def show_profile(name: str, fmt: str) -> None:
    loaded = config.load()
    for warning in loaded.warnings:
        output.warn(warning)
    if name not in loaded.profiles:
        raise ConfigError(f"unknown profile {name!r}",
                          hint="profiles: " + (", ".join(sorted(loaded.profiles)) or "none"))
    resolved = config.resolve(loaded, profile=name)
    profile, options = loaded.profiles[name], resolved.options
    record: dict[str, Any] = {
        "name": name,
        "config_file": str(loaded.path) if loaded.path else None,
        "default": name == loaded.default_profile,
        "url": str(options.url),
        "password": "***" if options.url.password else None,
        "password_source": _password_source(profile),
        "management_url": redact(options.management_url) if options.management_url else None,
        "ca_file": options.tls.ca_file,
        "cert_file": options.tls.cert_file,
        "key_file": options.tls.key_file,
        "verify": options.tls.verify,
        "protected": list(profile.protected),
        "dead_letter_suffixes": list(profile.dead_letter_suffixes),
        "dead_letter_prefixes": list(profile.dead_letter_prefixes),
        "list_end": options.list_end,
    }
    output.result(record, fmt)


def _password_source(profile: config.Profile) -> str | None:
    if profile.password_env:
        return f"env {profile.password_env}"
    if profile.password_file:
        return f"file {profile.password_file}"
    return None
