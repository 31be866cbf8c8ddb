"""Queue names on Tab: ``qctl peek -p prod ord<TAB>`` asks the broker of the profile or URL already typed.

Bounded: the broker gets at most :data:`BUDGET` seconds (a timer interrupts a hung connection), and a
slow or unreachable broker completes nothing rather than hanging the shell.  Listings are cached for
:data:`TTL` seconds under ``$XDG_CACHE_HOME/qctl`` (``~/.cache/qctl``) in files of mode 0600 named by
a hash of the masked URL; they hold queue names only, never a URL or a password.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUDGET = 0.6  # seconds for the whole lookup: the shell gets an answer (or nothing) within about a second
TTL = 30.0
MAX_NAMES = 500


class _OutOfTime(Exception):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qctl"


def complete_queues(ctx: Any, incomplete: str) -> list[str]:
    """The queue names starting with ``incomplete`` on the broker the command line names so far."""
    try:
        with _deadline(BUDGET):
            return [name for name in _names(ctx, incomplete) if name.startswith(incomplete)][:MAX_NAMES]
    except Exception:  # completion must never print an error into the shell
        return []


def _names(ctx: Any, incomplete: str) -> list[str]:
    from qctl import config, registry

    params = ctx.params if ctx is not None else {}
    urls, profiles = params.get("url") or [], params.get("profile") or []
    target = config.resolve(config.load(), url=urls[0] if urls else None, profile=profiles[0] if profiles else None,
                            management_url=params.get("management_url"), timeout=BUDGET * 0.6)
    import hashlib  # here, not at start-up (~7 ms of every qctl run)

    key = hashlib.sha256(str(target.options.url).encode()).hexdigest()[:24]  # the masked URL: no secret in it
    cached = _read_cache(key)
    if cached is not None:
        return cached
    adapter = registry.adapter_class(target.options.url.scheme)(target.options)
    try:
        names = sorted(adapter.names(""))[: MAX_NAMES * 4]
    finally:
        adapter.close()
    _write_cache(key, names)
    return names


def _read_cache(key: str) -> list[str] | None:
    import json  # here, like hashlib: only completion needs it

    path = cache_dir() / f"queues-{key}.json"
    try:
        if time.time() - path.stat().st_mtime > TTL:
            return None
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return [str(name) for name in names] if isinstance(names, list) else None


def _write_cache(key: str, names: list[str]) -> None:
    import json

    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = directory / f".queues-{key}.{os.getpid()}"
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(names, file)
        scratch.replace(directory / f"queues-{key}.json")
    except OSError:
        pass  # no cache, no harm


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(_number: int, _frame: Any) -> None:
        raise _OutOfTime()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
