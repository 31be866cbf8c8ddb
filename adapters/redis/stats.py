"""``qctl stats`` for Redis: one row per list, stream and sorted set.

A whole-server run is SCAN plus pipelined TYPE, depth and (for streams)
``XINFO GROUPS``: a few round trips per thousand keys, never one per key.
Dead-letter queues are found by name (``options.dead_letter.candidates``).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import (
    QUEUE_TYPES,
    depths,
    is_glob,
    key_bytes,
    key_name,
    pipelined,
    redis_glob,
    scan,
    types_and_depths,
    types_of,
)
from qctl.adapters.redis.messages import id_time
from qctl.deadletter import DeadLetterNaming
from qctl.errors import Unsupported
from qctl.models import QueueStats

BACKEND = "redis"


@dataclass(slots=True)
class Found:
    """Queues seen so far: name -> (type, depth), and which were named explicitly."""

    kinds: dict[str, str] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    explicit: list[str] = field(default_factory=list)


def collect(client: Client, patterns: Sequence[str], naming: DeadLetterNaming, *,
            groups: bool) -> list[QueueStats]:
    found = Found()
    globs = [redis_glob(p) for p in patterns if is_glob(p)] if patterns else ["*"]
    names = [p for p in patterns if not is_glob(p)]
    scanned = list(dict.fromkeys(name for glob in globs for name in scan(client, None if glob == "*" else glob)))
    _add_queues(client, found, scanned, explicit=False)
    _add_queues(client, found, names, explicit=True)
    queues = sorted(set(found.explicit) | {n for n, k in found.kinds.items() if k in QUEUE_TYPES})
    dead = _dead_letters(client, found, queues, naming, globs if patterns else None)
    streams = [name for name in queues if found.kinds[name] == "stream"]
    replies = pipelined(client, (command for s in streams
                                 for command in (("XINFO", "GROUPS", key_bytes(s)), ("XINFO", "STREAM", key_bytes(s)))))
    infos = dict(zip(streams, replies[::2], strict=True))
    heads = {name: _head(reply) for name, reply in zip(streams, replies[1::2], strict=True)}
    now = time.time()
    rows: list[QueueStats] = []
    for name in queues:
        first_id, added = heads.get(name, (None, None))
        oldest = max(0.0, now - id_time(first_id).timestamp()) if first_id else None
        rows.extend(_rows(name, found, dead.get(name), infos.get(name, []), groups=groups, oldest=oldest,
                          added=added))
    return rows


def _head(reply: Any) -> tuple[str | None, int | None]:
    """(first entry ID, entries-added) from XINFO STREAM, whichever shape redis-py gives it."""
    values = {key_name(key): value for key, value in (reply.items() if isinstance(reply, dict) else [])}
    first = values.get("first-entry")
    first_id = key_name(first[0]) if isinstance(first, (list, tuple)) and first else None
    added = values.get("entries-added")
    return first_id, int(added) if isinstance(added, int) else None


def _add_queues(client: Client, found: Found, names: Sequence[str], *, explicit: bool) -> None:
    new = [name for name in names if name not in found.kinds]
    for name, (kind, depth) in zip(new, types_and_depths(client, new), strict=True):
        if explicit and kind not in (*QUEUE_TYPES, "none"):
            raise Unsupported(f"{name!r} is a Redis {kind}, not a queue (list, stream or sorted set)")
        # Redis deletes an emptied list, so a missing key named explicitly is an empty list.
        found.kinds[name] = "list" if kind == "none" else kind
        if found.kinds[name] in QUEUE_TYPES:
            found.depths[name] = depth
    if explicit:
        found.explicit.extend(name for name in names if name not in found.explicit)


def _dead_letters(client: Client, found: Found, queues: Sequence[str], naming: DeadLetterNaming,
                  globs: Sequence[str] | None) -> dict[str, str]:
    """queue -> its dead-letter queue.  A DLQ's own DLQ is not looked for (no dlq:dlq chains).

    After a whole-server scan every DLQ is already known; otherwise probe, in one
    pipeline, only candidates the scan could not have seen.
    """
    owners = [name for name in queues if not naming.is_dead_letter_name(name)]
    if globs is not None:
        unseen = [c for name in owners for c in naming.candidates(name)
                  if c not in found.kinds and not any(fnmatch.fnmatchcase(c, g) for g in globs)]
        probe = list(dict.fromkeys(unseen))
        for name, kind in zip(probe, types_of(client, probe), strict=True):
            if kind in QUEUE_TYPES:
                found.kinds[name] = kind
        _add_depths(client, found, probe)
    dead: dict[str, str] = {}
    for name in owners:
        match = next((c for c in naming.candidates(name) if found.kinds.get(c) in QUEUE_TYPES
                      and (c in found.depths)), None)
        if match is not None:
            dead[name] = match
    return dead


def _add_depths(client: Client, found: Found, names: Sequence[str]) -> None:
    typed = [(n, found.kinds[n]) for n in names if found.kinds.get(n) in QUEUE_TYPES and n not in found.depths]
    found.depths.update(zip((n for n, _ in typed), depths(client, typed), strict=True))


def _rows(name: str, found: Found, dlq: str | None, infos: list[dict[Any, Any]], *, groups: bool,
          oldest: float | None = None, added: int | None = None) -> list[QueueStats]:
    kind = found.kinds[name]
    base: dict[str, Any] = {
        "backend": BACKEND, "queue": name, "type": kind, "depth": found.depths.get(name, 0),
        "dead_letter_queue": dlq, "dead_letter_depth": found.depths.get(dlq) if dlq else None,
        "oldest_age": oldest, "total_in": added,
    }
    if kind != "stream":
        return [QueueStats(**base)]
    parsed = [_group(info) for info in infos]
    if groups and parsed:
        return [QueueStats(**base, group=g["name"], in_flight=g["pending"], consumers=g["consumers"], lag=g["lag"])
                for g in parsed]
    lags = [g["lag"] for g in parsed if g["lag"] is not None]
    return [QueueStats(**base, in_flight=sum(g["pending"] for g in parsed),
                       consumers=sum(g["consumers"] for g in parsed), lag=max(lags) if lags else None)]


def _group(info: dict[Any, Any]) -> dict[str, Any]:
    """One XINFO GROUPS entry with text keys (redis-py gives bytes or str keys)."""
    values = {key_name(key): value for key, value in info.items()}
    lag = values.get("lag")
    return {"name": key_name(values.get("name", b"")), "pending": int(values.get("pending") or 0),
            "consumers": int(values.get("consumers") or 0), "lag": None if lag is None else int(lag)}
