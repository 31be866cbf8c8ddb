"""``stats``: one cheap management-API listing for many queues, exact AMQP counts for named ones.

How a listing (no argument, or a glob) gets its rows
----------------------------------------------------
One ``GET /api/queues/<vhost>?disable_stats=true&enable_queue_totals=true``
with the columns name, type, arguments, policy, messages_ready and
messages_unacknowledged; in parallel ``/api/consumers/<vhost>`` (counted per
queue), ``/api/policies/<vhost>``, ``/api/operator-policies/<vhost>`` and
``/api/whoami``.  The effective policy is the one the listing names (the broker
chose it) merged with the operator policy qctl matches
(:mod:`qctl.adapters.rabbitmq.policies`); dead-letter arguments win over it.

Why not the paged listing the contract's "page through" suggests: measured by
bench/rabbitmq.py on RabbitMQ 3.10.8 with 5,000 queues, 2 shared CPUs, cold
requests (the management cache emptied first), medians of 5 (13:20 UTC run in
bench/results/rabbitmq.md; the other runs there agree):

    request(s)                                                 seconds   broker CPU s
    ``rabbitmqadmin list queues``'s (statistics, unpaged)         1.40       1.44
    10 pages of 500, statistics columns, one at a time            1.82       1.81
    the same, 2 pages at a time                                   1.61       1.84
    the same, 4 pages at a time                                   1.58       2.22
    10 pages, ``disable_stats&enable_queue_totals``               2.35       2.58
    10 pages, ``disable_stats`` alone (no counts at all)          1.04       1.01
    one request, ``disable_stats&enable_queue_totals`` (qctl)     0.33       0.34
    consumers, policies, operator policies, whoami (qctl)         0.005      0.01

On 3.10 a page is not cheaper for the broker than the whole listing: every
request first formats *all* queues of the vhost (and with
``enable_queue_totals`` asks every queue for its counts) and only then cuts
the page (``rabbit_mgmt_wm_queues``, ``rabbit_mgmt_util:augment_resources``);
with statistics, each page also joins its 500 rows against the statistics
database.  Ten pages cost the broker more than one full listing, so paging
protects nothing here, and the statistics join is what makes
``rabbitmqadmin`` slow.  The single ``disable_stats`` request costs the broker
about a quarter of one statistics listing (it asks each queue process for its
totals, as ``rabbitmqctl list_queues`` does, instead of joining the statistics
database) and its counts are current rather than seconds old.
So a listing is one request, not paged: fewer round trips and less broker
work, which is what "never hurt the broker" is for.  ``consumers`` is not in
that listing, hence ``/api/consumers``.

Users tagged neither ``administrator`` nor ``monitoring`` see only their own
consumers in ``/api/consumers``; for them (and if the policies cannot be read)
the listing falls back to the paged statistics listing, 500 rows a page, 2
pages at a time, which carries consumers and the effective policy itself.
When the node has statistics disabled, ``consumers`` is null.

Exactness
---------
The listing's counts can lag a little (quorum queues publish theirs every few
seconds); a short selection (a glob matching at most ``EXACT_LIMIT`` queues)
and queues named outright get a passive declare each, whose ready count and
consumers are exact.  Without the management API, named queues still work over
AMQP alone: depth and consumers are exact, ``in_flight`` is null and ``type``
is ``unknown``.

MQTT sessions
-------------
RabbitMQ's MQTT plugin keeps a persistent session's subscriptions in a real
queue, ``mqtt-subscription-<client id>qos1`` (``qos0`` for QoS 0 ones), so an
offline MQTT client's backlog is an ordinary queue here (stats, peek, purge,
move).  Every row carries ``mqtt_client``: that client id, or null for any
other queue.

Clusters
--------
Every row also carries ``leader`` (the node leading a quorum or stream queue,
the node of a classic one) and ``members`` (how many nodes hold it), from the
same listing's ``leader``/``members``/``node`` columns; null without the
management API.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.dlx import DeadLetterResolver, DeadLetterRoute, route_of
from qctl.adapters.rabbitmq.errors import ManagementUnavailable, QueueLocked
from qctl.adapters.rabbitmq.management import HINT, MONITOR_TAGS, Management
from qctl.adapters.rabbitmq.policies import PolicyBook
from qctl.deadletter import DeadLetterNaming
from qctl.errors import QueueNotFound
from qctl.models import QueueStats

BACKEND = "rabbitmq"
UNKNOWN_TYPE = "unknown"
EXACT_LIMIT = 100  # selections up to this many queues get exact AMQP counts
NAMED_REQUESTS = 8  # queues named outright get a request each up to this many; more: one listing
PARALLEL = 4  # management requests in flight at once for named queues and their dead-letter candidates
REGISTER_WAIT = 2.0  # seconds to wait for the management API to list a queue AMQP already has
MQTT_QUEUE = re.compile(r"mqtt-subscription-(?P<client>.+)qos[012]", re.DOTALL)


def mqtt_client(name: str) -> str | None:
    """The MQTT client id whose session this queue is (the MQTT plugin's naming), else None."""
    match = MQTT_QUEUE.fullmatch(name)
    return match.group("client") if match else None


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue as the management API describes it, whichever request it came from."""

    name: str
    type: str
    arguments: Mapping[str, Any]
    definition: Mapping[str, Any]  # the effective policy definition
    ready: int | None
    unacked: int | None
    consumers: int | None
    leader: str | None = None  # the node of a classic queue, the leader of a quorum or stream queue
    members: int | None = None  # how many nodes hold it (1 for a classic queue)

    @classmethod
    def from_stats(cls, row: Mapping[str, Any], book: PolicyBook | None = None) -> QueueRow:
        """A row of the statistics-backed API (paged listing, one queue).

        Its ``effective_policy_definition`` lags policy changes by the statistics interval; with the
        vhost's policies at hand, qctl's own matching (current) is used instead.
        """
        name, kind, arguments = str(row["name"]), str(row.get("type") or UNKNOWN_TYPE), _mapping(row.get("arguments"))
        if book is not None:
            definition: Mapping[str, Any] = book.effective_definition(name, _known(kind))
        else:
            definition = _mapping(row.get("effective_policy_definition"))
        return cls(name=name, type=kind, arguments=arguments, definition=definition,
                   ready=_int(row.get("messages_ready")), unacked=_int(row.get("messages_unacknowledged")),
                   consumers=_int(row.get("consumers")), **_placement(row))

    @classmethod
    def from_listing(cls, row: Mapping[str, Any], book: PolicyBook, consumers: Mapping[str, int] | None) -> QueueRow:
        """A row of the ``disable_stats`` listing, which names the queue's policy but not its definition."""
        name, kind = str(row["name"]), str(row.get("type") or UNKNOWN_TYPE)
        policy = row.get("policy")
        definition = book.effective_definition(name, _known(kind), policy_name=str(policy) if policy else None,
                                               named_only=True)
        return cls(name=name, type=kind, arguments=_mapping(row.get("arguments")), definition=definition,
                   ready=_int(row.get("messages_ready")), unacked=_int(row.get("messages_unacknowledged")),
                   consumers=consumers.get(name, 0) if consumers is not None else None, **_placement(row))


def _placement(row: Mapping[str, Any]) -> dict[str, Any]:
    """``leader`` and ``members`` of a cluster's queue: quorum and stream queues list theirs, a classic
    queue has its ``node`` (one member)."""
    leader = row.get("leader") or row.get("node")
    members = row.get("members")
    return {"leader": str(leader) if leader else None,
            "members": len(members) if isinstance(members, list) else (1 if row.get("node") else None)}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}  # the API gives [] for "none" in places


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _known(kind: str) -> str | None:
    return None if kind == UNKNOWN_TYPE else kind


class StatsCollector:
    def __init__(self, session: Session, management: Management, naming: DeadLetterNaming) -> None:
        self.session = session
        self.management = management
        self.naming = naming
        self.resolver = DeadLetterResolver(management)
        self._probe_api = False  # named queues' dead-letter candidates: asked of the API (it answered), or AMQP
        self._book_read = False
        self._policies: PolicyBook | None = None

    def collect(self, patterns: Sequence[str]) -> list[QueueStats]:
        names = [p for p in patterns if not is_glob(p)]
        if patterns and len(names) == len(patterns):
            return self._named(names)
        return self._listed(patterns, names)

    # --- listing through the management API --------------------------------

    def _listing(self) -> list[QueueRow]:
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                consumers = pool.submit(self.management.consumer_counts)
                book = pool.submit(self._book)
                raw = self.management.queue_listing()
                counts, policies = consumers.result(), book.result()
            if policies is None or (counts is None and not MONITOR_TAGS & self.management.tags()):
                # Consumers of other users' connections, or the policies, are hidden from this user:
                # the statistics listing carries both.
                fallback = self._book()
                return [QueueRow.from_stats(row, fallback) for row in self.management.queues_paged()]
        except ManagementUnavailable as exc:
            raise ManagementUnavailable(f"listing queues needs the management API: {exc.args[0]}",
                                        hint=(exc.hint or HINT) + "; named queues work over AMQP alone") from None
        return [QueueRow.from_listing(row, policies, counts) for row in raw]

    def _book(self) -> PolicyBook | None:
        """The vhost's policies, read once per collection (None if they cannot be read)."""
        if not self._book_read:
            self._book_read = True
            try:
                self._policies = self.management.policy_book()
            except ManagementUnavailable:
                self._policies = None
        return self._policies

    def _listed(self, patterns: Sequence[str], names: Sequence[str]) -> list[QueueStats]:
        rows = self._listing()
        by_name = {row.name: row for row in rows}
        wanted, globs = set(names), [p for p in patterns if is_glob(p)]
        chosen = [row for row in rows if not patterns or row.name in wanted
                  or any(fnmatch.fnmatchcase(row.name, p) for p in globs)]
        for name in names:
            if name not in by_name:
                self.session.passive(name)  # raises QueueNotFound; else it was created after the listing
        # A short selection gets exact counts from passive declares, a big listing stays cheap.  Rows
        # without counts (a queue whose node is down) get one too, unless there are many of them.
        exact_all = bool(patterns) and len(chosen) <= EXACT_LIMIT
        uncounted = sum(1 for row in chosen if row.ready is None) <= EXACT_LIMIT
        routes = {row.name: route_of(row.name, row.arguments, row.definition) for row in chosen}  # once a row
        self.resolver.prefetch(route for route in routes.values() if route)
        result = []
        for row in chosen:
            named = row.name in wanted
            try:
                result.append(self._row(row, by_name, exact=exact_all or named or (row.ready is None and uncounted),
                                        route=routes[row.name]))
            except QueueNotFound:
                if named:
                    raise
                # deleted since the listing: it is no longer a queue to report
        return result

    # --- named queues -------------------------------------------------------

    def _named(self, names: Sequence[str]) -> list[QueueStats]:
        """Queues named outright: one statistics request each, PARALLEL in flight, up to NAMED_REQUESTS names;
        more than that are picked out of one listing (a request per name grew with the names)."""
        try:
            if len(names) > NAMED_REQUESTS:
                return self._listed(names, names)
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(names))) as pool:
                rows = dict(zip(names, pool.map(self.management.queue, names), strict=True))
        except ManagementUnavailable:
            return [self._amqp_only(name) for name in names]
        self._probe_api = True
        book = self._book()
        result = []
        for name in names:
            row = rows[name]
            if row is None:
                self.session.passive(name)  # QueueNotFound, unless created since
                row = self._registered(name) or {"name": name, "type": UNKNOWN_TYPE}
            named = QueueRow.from_stats(row, book)
            result.append(self._row(named, {}, exact=True, route=route_of(named.name, named.arguments,
                                                                          named.definition)))
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
                          dead_letter_depth=self._depth(dlq, {}),
                          extra={"mqtt_client": mqtt_client(name), "leader": None, "members": None})

    # --- one row -------------------------------------------------------------

    def _row(self, row: QueueRow, by_name: Mapping[str, QueueRow], *, exact: bool,
             route: DeadLetterRoute | None) -> QueueStats:
        """One row; ``route`` is the queue's dead-letter route (:func:`route_of`), worked out once by the caller."""
        depth, consumers = row.ready, row.consumers
        if exact:
            try:
                count = self.session.passive(row.name)
            except QueueLocked:
                # An exclusive queue of another connection (e.g. amq.gen-* reply queues) refuses even a
                # passive declare: the API's counts stand (null if it has none yet).
                pass
            else:
                depth, consumers = count.ready, count.consumers
        dlq = self._dead_letter_queue(row, by_name, route)
        return QueueStats(backend=BACKEND, queue=row.name, type=row.type, depth=depth, in_flight=row.unacked,
                          consumers=consumers, dead_letter_queue=dlq, dead_letter_depth=self._depth(dlq, by_name),
                          extra={"mqtt_client": mqtt_client(row.name), "leader": row.leader, "members": row.members})

    def _dead_letter_queue(self, row: QueueRow, by_name: Mapping[str, QueueRow],
                           route: DeadLetterRoute | None) -> str | None:
        if route is not None:
            found = self.resolver.queue_for(route)
            if found is not None:
                return found
        return self._by_convention(row.name, by_name)

    def _by_convention(self, name: str, by_name: Mapping[str, QueueRow]) -> str | None:
        candidates = self.naming.candidates(name)
        if by_name:  # a full listing: a queue missing from it does not exist
            return next((candidate for candidate in candidates if candidate in by_name), None)
        if self._probe_api:
            return self._first_queue(candidates)
        return next((candidate for candidate in candidates if self.session.exists(candidate)), None)

    def _first_queue(self, candidates: Sequence[str]) -> str | None:
        """The first of ``candidates`` that is a queue, asked of the management API PARALLEL at a time.

        A GET for a name that is no queue is a 404 of ~2 ms; the passive declares it replaces each
        closed the channel on failure (a new one per miss, ~37 ms for the 18 names of the conventions).
        """
        vhost = self.management.vhost
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for start in range(0, len(candidates), PARALLEL):
                batch = candidates[start:start + PARALLEL]
                found = pool.map(lambda c: self.management.get(f"/api/queues/{vhost}/{quote(c, safe='')}",
                                                               {"columns": "name"}), batch)
                hit = next((candidate for candidate, row in zip(batch, found, strict=True) if row is not None), None)
                if hit is not None:
                    return hit
        return None

    def _depth(self, queue: str | None, by_name: Mapping[str, QueueRow]) -> int | None:
        if queue is None:
            return None
        if by_name:  # a full listing: a queue missing from it does not exist
            row = by_name.get(queue)
            return row.ready if row is not None else None
        try:
            return self.session.passive(queue).ready
        except (QueueNotFound, QueueLocked):
            return None  # routed to a queue that does not exist (yet), or another connection's exclusive one
