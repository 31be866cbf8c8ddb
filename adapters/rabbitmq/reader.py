"""A pass over a classic or quorum queue: take messages unacked, ack what the engine settles.

Messages are taken with :class:`~.consume.Taker` (exactly as many as asked,
never more than the queue held when the pass opened) and held unacked.
Settling acks them -- one ``multiple`` ack while every earlier message is
settled too, single acks once something before them is kept; keeping leaves
them unacked, and closing the pass closes the channel, which returns every
kept message to its old place, in order.  Streams cannot be taken from (a
pass over one is refused).
"""

from __future__ import annotations

from collections.abc import Sequence

from qctl.adapters.rabbitmq.connection import Session
from qctl.adapters.rabbitmq.consume import Taker
from qctl.adapters.rabbitmq.errors import translated
from qctl.adapters.rabbitmq.messages import to_message
from qctl.primitives import ReadMode, SourceTraits, Taken

CHUNK = 2000


class RabbitMQReader:
    def __init__(self, session: Session, queue: str, mode: ReadMode, traits: SourceTraits, *, quorum: bool) -> None:
        self.session = session
        self.queue = queue
        self.mode = mode
        self.quorum = quorum
        self.traits = SourceTraits(counts_reads=traits.counts_reads, read_limit=traits.read_limit,
                                   limit_reason=traits.limit_reason, chunk=CHUNK)
        self._total = session.passive(queue).ready
        self._taker: Taker | None = None
        self._read = 0
        self._acked_through = 0  # every tag up to this one is settled (acked, or kept and so never acked)
        self._done_above: set[int] = set()  # acked tags above that floor
        self._kept: set[int] = set()  # held unacked to the end: no multiple ack may cover them

    def total(self) -> int:
        return self._total

    def read(self, limit: int) -> list[Taken]:
        limit = min(limit, self._total - self._read)
        if limit <= 0:
            return []
        with translated(self.session.where, f"read {self.queue!r}"):
            if self._taker is None:
                self._taker = Taker(self.session, self.queue)
            deliveries = self._taker.take(limit)
        self._read += len(deliveries)
        return [Taken(to_message(self.queue, str(self._read - len(deliveries) + i + 1), d.properties, d.body,
                                 redelivered=d.redelivered, quorum=self.quorum), d.tag)
                for i, d in enumerate(deliveries)]

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        """Ack: one ``multiple`` ack when these run on from the floor with nothing unsettled between."""
        if not taken or self._taker is None:
            return [True] * len(taken)
        tags = sorted(item.handle for item in taken)
        with translated(self.session.where, f"ack {self.queue!r}"):
            if tags == list(range(self._acked_through + 1, tags[-1] + 1)) and not self._kept:
                self._taker.ack(tags[-1], multiple=True)
                self._acked_through = tags[-1]
                self._raise_floor()
            else:
                for tag in tags:
                    self._taker.ack(tag, multiple=False)
                self._done_above.update(tags)
                self._raise_floor()
        return [True] * len(taken)

    def _raise_floor(self) -> None:
        while self._acked_through + 1 in self._done_above:
            self._acked_through += 1
            self._done_above.discard(self._acked_through)

    def keep(self, taken: Sequence[Taken]) -> None:
        # Stays unacked (returned in place when the pass closes): a multiple ack past it would take it too.
        self._kept.update(item.handle for item in taken)

    def close(self) -> None:
        taker, self._taker = self._taker, None
        if taker is not None:
            with translated(self.session.where, f"return messages to {self.queue!r}"):
                taker.return_all()
