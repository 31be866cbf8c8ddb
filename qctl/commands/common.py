"""What every command does between parsing and its own work: which broker, which adapter, which options.

The broker comes from the config precedence (:func:`qctl.config.resolve`); the
adapter class from the registry; options that only other backends understand
are refused here, once, before any broker is contacted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qctl import config, output, registry
from qctl.adapter import Adapter
from qctl.config import Target
from qctl.errors import UsageError


def check_format(fmt: str, *, allow_prom: bool = False) -> None:
    allowed = output.FORMATS if allow_prom else tuple(f for f in output.FORMATS if f != "prom")
    if fmt not in allowed:
        raise UsageError(f"unknown output format {fmt!r}", hint="choose one of " + ", ".join(allowed))


def loaded_config() -> config.Config:
    loaded = config.load()
    for warning in loaded.warnings:
        output.warn(warning)
    return loaded


def target(urls: Sequence[str], profiles: Sequence[str], management_url: str | None, timeout: float, *,
           command: str, loaded: config.Config | None = None) -> Target:
    """The one broker a single-broker command talks to; naming two is a usage error, not "the last wins"."""
    if len(urls) > 1 or len(profiles) > 1:
        raise UsageError(f"{command} talks to one broker, but -u/--url or -p/--profile was given more than once",
                         hint="give one -u URL or one -p PROFILE (only stats takes several)")
    return config.resolve(loaded or loaded_config(), url=urls[0] if urls else None,
                          profile=profiles[0] if profiles else None, management_url=management_url,
                          timeout=timeout)


def targets(urls: Sequence[str], profiles: Sequence[str], management_url: str | None,
            timeout: float) -> list[Target]:
    """Every broker named by repeated ``-u``/``-p`` (one when none is named); the config is read once."""
    loaded = loaded_config()
    if not urls and not profiles:
        return [config.resolve(loaded, management_url=management_url, timeout=timeout)]
    chosen = [config.resolve(loaded, url=url, management_url=management_url, timeout=timeout) for url in urls]
    chosen += [config.resolve(loaded, profile=name, management_url=management_url, timeout=timeout)
               for name in profiles]
    return chosen


def open_adapter(chosen: Target, *, given: Mapping[str, Any] | None = None,
                 flags: Mapping[str, Any] | None = None) -> Adapter:
    """The adapter for ``chosen``, after refusing the options in ``given`` that its backend does not take.

    ``given`` maps a backend-specific option's name (``--group``) to its value (None: not given);
    ``flags`` are handed to the adapter as ``options.flags``.
    """
    cls = registry.adapter_class(chosen.options.url.scheme)
    options = chosen.options
    if flags:
        options = dataclasses.replace(options, flags={**options.flags, **flags})
    adapter = cls(options)
    check_options(adapter, chosen, given or {})
    return adapter


def check_options(adapter: Adapter, chosen: Target, given: Mapping[str, Any]) -> None:
    unknown = [name for name, value in given.items()
               if value is not None and value is not False and name not in adapter.understands]
    if unknown:
        takes = ", ".join(sorted(adapter.understands)) or "none of them"
        raise UsageError(f"{unknown[0]} does not apply to {adapter.backend} ({chosen.options.url})",
                         hint=f"remove it; of the backend-specific options {adapter.backend} takes: {takes}")


def notes(lines: Iterable[str], quiet: bool) -> None:
    if not quiet:
        for line in dict.fromkeys(lines):
            output.note(line)


def print_notices(adapter: Adapter, quiet: bool) -> None:
    notes(adapter.notices, quiet)
    adapter.notices.clear()
