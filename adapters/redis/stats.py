"""``qctl stats`` for Redis: one row per list, stream and sorted set.

A whole-server run is SCAN plus one script call per thousand keys (LLEN, and
TYPE and XLEN/ZCARD only for keys that are not lists) and, for streams,
pipelined ``XINFO``: a few round trips per thousand keys, about one command per
key, never a round trip per key.  Dead-letter queues are found by name
(``options.dead_letter.candidates``): with a glob, by one more SCAN per glob,
not by probing each queue's candidates (:func:`_dead_letters`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import (
    QUEUE_TYPES,
    is_glob,
    key_bytes,
    key_name,
    pipelined,
    redis_glob,
    scan,
    types_and_depths,
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
    depths = found.depths
    for name in queues:
        kind = found.kinds[name]
        dlq = dead.get(name)
        if kind != "stream":  # most rows: built at once (a row of 10,000 costs more than its commands here)
            rows.append(QueueStats(backend=BACKEND, queue=name, type=kind, depth=depths.get(name, 0),
                                   dead_letter_queue=dlq, dead_letter_depth=depths.get(dlq) if dlq else None))
            continue
        first_id, added = heads.get(name, (None, None))
        oldest = max(0.0, now - id_time(first_id).timestamp()) if first_id else None
        rows.extend(_rows(name, found, dlq, infos.get(name, []), groups=groups, oldest=oldest, added=added))
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

    After a whole-server scan every DLQ is already known.  Otherwise the DLQs the scan could not
    have seen are looked for once per glob, not once per queue: one more SCAN whose pattern covers
    every prefix candidate (``d*`` + glob for dlq:, dlq., dlq-, dead:) unless the glob starts with
    ``*``, one for the suffixes unless it ends with ``*``; only keys that are a listed queue's
    candidate get typed.  Names given without a glob have their candidates probed (a few each).
    Probing every candidate of every matched queue cost 4 TYPE commands a key and 180,000
    ``fnmatch`` calls for 10,000 queues (bench/results/redis.md).
    """
    rules = _Rules(naming)
    origins = {name: rules.origins(name) for name in found.depths}  # once a key: most have none
    owners = {name for name in queues if not (origins[name] if name in origins else rules.origins(name))}
    if globs is not None:
        wanted: dict[str, None] = {}
        for glob in globs:
            for pattern in rules.covering(glob):
                wanted.update(dict.fromkeys(key for key in scan(client, pattern)
                                            if key not in found.kinds and rules.owner(key, owners) is not None))
        wanted.update(dict.fromkeys(c for name in found.explicit if name in owners for c in naming.candidates(name)
                                    if c not in found.kinds))
        probe = list(wanted)
        for name, (kind, depth) in zip(probe, types_and_depths(client, probe), strict=True):
            if kind in QUEUE_TYPES:
                found.kinds[name] = kind
                found.depths[name] = depth
                origins[name] = rules.origins(name)
    best: dict[str, tuple[int, str]] = {}
    for key, ranked in origins.items():
        for rank, origin in ranked:
            if origin in owners and rank < best.get(origin, (len(rules), ""))[0]:
                best[origin] = (rank, key)
    return {name: dlq for name, (_, dlq) in best.items()}


class _Rules:
    """The naming rules as prefix/suffix tests, ranked as ``DeadLetterNaming.candidates`` orders them."""

    def __init__(self, naming: DeadLetterNaming) -> None:
        self.suffixes, self.prefixes = tuple(naming.suffixes), tuple(naming.prefixes)

    def __len__(self) -> int:
        return len(self.suffixes) + len(self.prefixes)

    def origins(self, key: str) -> list[tuple[int, str]]:
        """(rank, queue) for every rule that makes ``key`` a dead-letter queue of ``queue``."""
        found = []
        if key.endswith(self.suffixes):  # one C call rules out most keys
            found += [(rank, key[:-len(s)]) for rank, s in enumerate(self.suffixes)
                      if key.endswith(s) and len(key) > len(s)]
        if key.startswith(self.prefixes):
            found += [(rank, key[len(p):]) for rank, p in enumerate(self.prefixes, len(self.suffixes))
                      if key.startswith(p) and len(key) > len(p)]
        return found

    def owner(self, key: str, owners: set[str]) -> str | None:
        return next((origin for _, origin in self.origins(key) if origin in owners), None)

    def covering(self, glob: str) -> list[str]:
        """Redis patterns that match every candidate of every key ``glob`` matches and ``glob`` does not."""
        patterns = []
        if self.prefixes and not glob.startswith("*"):
            patterns.append(_escaped(_common_start(self.prefixes)) + "*" + glob)
        if self.suffixes and not _ends_with_star(glob):
            patterns.append(glob + "*" + _escaped(_common_start([s[::-1] for s in self.suffixes])[::-1]))
        return patterns


def _common_start(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), min(len(first), len(last)))
    return first[:size]


def _escaped(text: str) -> str:
    """``text`` as a literal inside a Redis glob."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _ends_with_star(glob: str) -> bool:
    """Whether the glob's last character is a wildcard ``*`` (not an escaped one)."""
    stem = glob[:-1]
    return glob.endswith("*") and (len(stem) - len(stem.rstrip("\\"))) % 2 == 0


def _rows(name: str, found: Found, dlq: str | None, infos: list[dict[Any, Any]], *, groups: bool,
          oldest: float | None = None, added: int | None = None) -> list[QueueStats]:
    """A stream's row, or one per consumer group with ``--groups``."""
    base: dict[str, Any] = {
        "backend": BACKEND, "queue": name, "type": "stream", "depth": found.depths.get(name, 0),
        "dead_letter_queue": dlq, "dead_letter_depth": found.depths.get(dlq) if dlq else None,
        "oldest_age": oldest, "total_in": added,
    }
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
