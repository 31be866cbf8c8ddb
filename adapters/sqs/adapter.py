"""The SQS :class:`~qctl.adapter.Adapter`: what it knows about each queue, and the modules that do the work.

botocore is imported here, at the top (through :mod:`.client`), so that a
missing ``qctl[sqs]`` extra is the registry's exit 2 "install qctl[sqs]".
Facts about a queue (its URL, FIFO or not, RedrivePolicy, MaximumMessageSize)
are asked once per command.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qctl.adapter import Adapter, ConnectOptions
from qctl.adapters.sqs import peek as peeking
from qctl.adapters.sqs import ping as pinging
from qctl.adapters.sqs import purge as purging
from qctl.adapters.sqs import stats as statistics
from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.destination import SQSDestination
from qctl.adapters.sqs.messages import DEFAULT_MAX_SIZE
from qctl.adapters.sqs.names import check, is_fifo, name_of
from qctl.adapters.sqs.notes import Notes
from qctl.adapters.sqs.reader import CHUNK, VISIBILITY, SQSReader
from qctl.adapters.sqs.stats import Policy, dead_letter_sources, redrive_policy
from qctl.errors import UsageError
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import ReadMode, SourceTraits

MAX_VISIBILITY = 43_200  # SQS's maximum visibility timeout: 12 hours


@dataclass(frozen=True, slots=True)
class QueueFacts:
    url: str
    fifo: bool
    policy: Policy | None
    max_size: int


class SQSAdapter(Adapter):
    backend = "sqs"
    understands = frozenset()

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.conn = Connection(options)
        self.notes = Notes(self.notices)
        self._facts: dict[str, QueueFacts] = {}
        self._destinations: list[SQSDestination] = []

    def check_name(self, queue: str) -> None:
        check(queue)

    def facts(self, queue: str) -> QueueFacts:
        if queue not in self._facts:
            url = self.conn.url_of(queue)
            attributes = self.conn.attributes(url, ["RedrivePolicy", "MaximumMessageSize"])
            size = attributes.get("MaximumMessageSize")
            self._facts[queue] = QueueFacts(url=url, fifo=is_fifo(url), policy=redrive_policy(attributes),
                                            max_size=int(size) if size and size.isdigit() else DEFAULT_MAX_SIZE)
        return self._facts[queue]

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        return statistics.collect(self.conn, patterns)

    def depth(self, queue: str) -> int:
        attributes = self.conn.attributes(self.facts(queue).url, ["ApproximateNumberOfMessages"])
        return int(attributes.get("ApproximateNumberOfMessages") or 0)

    def read_traits(self, queue: str) -> SourceTraits:
        """A queue with a RedrivePolicy counts every receive toward maxReceiveCount: it counts reads."""
        policy = self.facts(queue).policy
        if policy is None:
            return SourceTraits()
        limit = policy.max_receive_count
        return SourceTraits(
            counts_reads=True, read_limit=limit,
            limit_reason=f"a RedrivePolicy (maxReceiveCount {limit if limit is not None else '?'}: a message "
                         f"received that often moves to {policy.dead_letter_queue!r})",
            limit_hint="peek its dead-letter queue instead, or lift the RedrivePolicy (or raise maxReceiveCount) "
                       "first")

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        yield from peeking.peek(self.conn, self.facts(queue).url, request.count, self.notices)

    def purge(self, queue: str) -> PurgeResult:
        return purging.purge(self.conn, self.facts(queue).url, self.notices)

    def reader(self, queue: str, mode: ReadMode) -> SQSReader:
        facts = self.facts(queue)
        read = self.read_traits(queue)
        origin = self._origin(facts) if mode is ReadMode.MOVE else None
        traits = SourceTraits(counts_reads=read.counts_reads, read_limit=read.read_limit,
                              limit_reason=read.limit_reason, limit_hint=read.limit_hint,
                              settle_before_read=facts.fifo, origin=origin, server_moves=not facts.fifo, chunk=CHUNK,
                              group_property="MessageGroupId" if facts.fifo else None)
        return SQSReader(self.conn, facts.url, mode, traits, visibility=self._visibility(), notices=self.notices)

    def _origin(self, facts: QueueFacts) -> str | None:
        """The one queue whose RedrivePolicy names this one (ListDeadLetterSourceQueues), if exactly one does."""
        sources = dead_letter_sources(self.conn, facts.url)
        return sources[0] if len(sources) == 1 and sources[0] != name_of(facts.url) else None

    def _visibility(self) -> int:
        value = self.options.setting("visibility_timeout", VISIBILITY)
        try:
            seconds = int(value)
        except (TypeError, ValueError):
            seconds = -1
        if not 1 <= seconds <= MAX_VISIBILITY:
            raise UsageError(f"visibility_timeout {value!r} is not a number of seconds from 1 to {MAX_VISIBILITY}",
                             hint="how long a pass holds what it received; ?visibility_timeout=N or the profile's "
                                  "[profiles.NAME.sqs] table")
        return seconds

    def destination(self, queue: str) -> SQSDestination:
        facts = self.facts(queue)
        destination = SQSDestination(self.conn, facts.url, max_size=facts.max_size, notes=self.notes)
        self._destinations.append(destination)
        return destination

    def ping(self) -> list[Check]:
        return pinging.ping(self.conn)

    def close(self) -> None:
        destinations, self._destinations = self._destinations, []
        for destination in destinations:
            destination.close()
        self.conn.close()
