"""Queue names on Tab: ``qctl peek -p prod ord<TAB>`` asks the broker of the profile or URL already typed.

Bounded: the broker gets at most :data:`BUDGET` seconds (a timer interrupts a hung connection), the
lookup gives up :data:`WALL` seconds after the process started however slow its start-up was (see
:func:`_budget`), and a slow or unreachable broker completes nothing rather than hanging the shell.
Listings are cached for :data:`TTL` seconds under ``$XDG_CACHE_HOME/qctl`` (``~/.cache/qctl``) in files
of mode 0600 named by a hash of the masked URL; they hold queue names only, never a URL or a password.
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
# Seconds from the process's start by which the lookup gives up, however slow the start-up was.  Above
# BUDGET plus a usual start-up (0.2-0.5 s measured on a loaded machine), so that it cuts only a start-up
# slower than that: a live listing keeps its BUDGET, and the shell still has its answer within 1.5 s.
WALL = 1.1
FLOOR = 0.1  # the least a lookup gets (enough for a cached listing; a live broker rarely answers in time)
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
        budget = _budget()
        with _deadline(budget):
            return [name for name in _names(ctx, incomplete, budget) if name.startswith(incomplete)][:MAX_NAMES]
    except Exception:  # completion must never print an error into the shell
        return []


def _budget() -> float:
    """BUDGET, cut so that the lookup ends by WALL seconds after the process started (never below FLOOR).

    On a loaded machine the interpreter and its imports alone can take most of a second (measured: 0.3 to
    0.55 s to reach this function with a load of 12 on 2 CPUs); a fixed BUDGET on top of that kept the
    shell waiting 1.2 s and more.  Linux tells a process's start time (/proc); elsewhere BUDGET is used as is."""
    try:
        with open("/proc/self/stat", "rb") as stat, open("/proc/uptime", "rb") as uptime:
            # Field 22 is the start time in clock ticks after boot; the name (field 2) may hold spaces.
            started = int(stat.read().rsplit(b")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            spent = float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return BUDGET
    return max(FLOOR, min(BUDGET, WALL - spent))


def _names(ctx: Any, incomplete: str, budget: float = BUDGET) -> list[str]:
    from qctl import config, registry

    params = ctx.params if ctx is not None else {}
    urls, profiles = params.get("url") or [], params.get("profile") or []
    target = config.resolve(config.load(), url=urls[0] if urls else None, profile=profiles[0] if profiles else None,
                            management_url=params.get("management_url"), timeout=budget * 0.6)
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
