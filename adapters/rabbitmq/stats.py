"""``stats``: one management-API listing for many queues, exact AMQP counts for named ones.

A listing (no argument, or a glob) pages through the management API: a few
requests for thousands of queues.  Queues named outright also get a passive
declare, whose ready count and consumers are exact (the API lags by seconds).
Without the management API, named queues still work over AMQP alone: depth and
consumers are exact, ``in_flight`` is null and ``type`` is ``unknown``.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence
from typing import Any

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.dlx import DeadLetterResolver, route_of
from qctl.adapters.rabbitmq.errors import ManagementUnavailable
from qctl.adapters.rabbitmq.management import HINT, Management
from qctl.deadletter import DeadLetterNaming
from qctl.errors import QueueNotFound
from qctl.models import QueueStats

BACKEND = "rabbitmq"
UNKNOWN_TYPE = "unknown"
EXACT_LIMIT = 100  # selections up to this many queues get exact AMQP counts
REGISTER_WAIT = 2.0  # seconds to wait for the management API to list a queue AMQP already has


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


class StatsCollector:
    def __init__(self, session: Session, management: Management, naming: DeadLetterNaming) -> None:
        self.session = session
        self.management = management
        self.naming = naming
        self.resolver = DeadLetterResolver(management)

    def collect(self, patterns: Sequence[str]) -> list[QueueStats]:
        names = [p for p in patterns if not is_glob(p)]
        if patterns and len(names) == len(patterns):
            return self._named(names)
        return self._listed(patterns, names)

    # --- listing through the management API --------------------------------

    def _listed(self, patterns: Sequence[str], names: Sequence[str]) -> list[QueueStats]:
        try:
            rows = self.management.queues()
        except ManagementUnavailable as exc:
            raise ManagementUnavailable(f"listing queues needs the management API: {exc.args[0]}",
                                        hint=HINT + "; named queues work over AMQP alone") from None
        by_name = {str(row["name"]): row for row in rows}
        chosen = [row for row in rows if not patterns
                  or any(fnmatch.fnmatchcase(str(row["name"]), p) for p in patterns)]
        for name in names:
            if name not in by_name:
                self.session.passive(name)  # raises QueueNotFound; else it was created after the listing
        # The API's counters lag by seconds (and are absent for a queue it has not sampled yet):
        # a short selection gets exact counts from passive declares, a big listing stays cheap.
        exact_all = bool(patterns) and len(chosen) <= EXACT_LIMIT
        result = []
        for row in chosen:
            named = str(row["name"]) in names
            try:
                result.append(self._row(row, by_name, exact=exact_all or named or "messages_ready" not in row))
            except QueueNotFound:
                if named:
                    raise
                # deleted since the listing: it is no longer a queue to report
        return result

    # --- named queues -------------------------------------------------------

    def _named(self, names: Sequence[str]) -> list[QueueStats]:
        try:
            rows = {name: self.management.queue(name) for name in names}
        except ManagementUnavailable:
            return [self._amqp_only(name) for name in names]
        result = []
        for name in names:
            row = rows[name]
            if row is None:
                self.session.passive(name)  # QueueNotFound, unless created since
                row = self._registered(name) or {"name": name, "type": UNKNOWN_TYPE}
            result.append(self._row(row, {}, exact=True))
        return result

    def _registered(self, name: str) -> dict[str, Any] | None:
        """The API row of a queue that exists but that the API does not list yet.

        The management database learns of a new queue a moment after AMQP does.
        """
        deadline = time.monotonic() + REGISTER_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.05)
            row = self.management.queue(name)
            if row is not None:
                return row
        return None

    def _amqp_only(self, name: str) -> QueueStats:
        count = self.session.passive(name)
        dlq = self._by_convention(name, {})
        return QueueStats(backend=BACKEND, queue=name, type=UNKNOWN_TYPE, depth=count.ready,
                          in_flight=None, consumers=count.consumers, dead_letter_queue=dlq,
                          dead_letter_depth=self._depth(dlq, {}))

    # --- one row -------------------------------------------------------------

    def _row(self, row: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]], *, exact: bool) -> QueueStats:
        name = str(row["name"])
        depth, consumers = row.get("messages_ready"), row.get("consumers")
        if exact:
            count = self.session.passive(name)
            depth, consumers = count.ready, count.consumers
        dlq = self._dead_letter_queue(row, by_name)
        return QueueStats(backend=BACKEND, queue=name, type=str(row.get("type") or UNKNOWN_TYPE),
                          depth=depth, in_flight=row.get("messages_unacknowledged"), consumers=consumers,
                          dead_letter_queue=dlq, dead_letter_depth=self._depth(dlq, by_name))

    def _dead_letter_queue(self, row: Mapping[str, Any], by_name: Mapping[str, Mapping[str, Any]]) -> str | None:
        route = route_of(row)
        if route is not None:
            found = self.resolver.queue_for(route)
            if found is not None:
                return found
        return self._by_convention(str(row["name"]), by_name)

    def _by_convention(self, name: str, by_name: Mapping[str, Mapping[str, Any]]) -> str | None:
        for candidate in self.naming.candidates(name):
            if candidate in by_name if by_name else self.session.exists(candidate):
                return candidate
        return None

    def _depth(self, queue: str | None, by_name: Mapping[str, Mapping[str, Any]]) -> int | None:
        if queue is None:
            return None
        if by_name:  # a full listing: a queue missing from it does not exist
            depth = by_name.get(queue, {}).get("messages_ready")
            return int(depth) if isinstance(depth, int) else None
        try:
            return self.session.passive(queue).ready
        except QueueNotFound:
            return None  # routed to a queue that does not exist (yet)
