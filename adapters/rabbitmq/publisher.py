"""Publishing with a window of unconfirmed messages (publisher confirms, no round trip each).

pika's BlockingChannel waits for each confirm; here confirms are turned on on
the underlying channel and counted as they arrive, while the caller keeps
publishing.  Every publish is ``mandatory``: a message the broker cannot route
(its queue was deleted meanwhile) comes back as ``basic.return`` before its
confirm.  A return does not say which publish it was, so every publish still
unconfirmed at that moment is settled as *failed*: its source stays where it
is (a copy may also have reached the target — "both" is safe, "neither" is not).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pika.spec import Basic, BasicProperties

from qctl.adapters.rabbitmq.connection import Session, require_open
from qctl.errors import BrokerUnavailable


class ConfirmedPublisher:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.channel = session.channel()
        self._impl: Any = self.channel._impl
        self._next = 1
        self.pending: dict[int, None] = {}  # seqs published, not yet confirmed (ascending)
        self._suspect: set[int] = set()
        self.settled: list[tuple[int, bool]] = []
        self.returned = 0
        selected: list[bool] = []
        self._impl.confirm_delivery(self._on_confirm, callback=lambda _frame: selected.append(True))
        self._impl.add_on_return_callback(self._on_return)
        session.pump(lambda: bool(selected), session.options.timeout)

    def publish(self, exchange: str, routing_key: str, properties: BasicProperties, body: bytes) -> int:
        require_open(self.channel, f"publish to {routing_key!r}")
        seq = self._next
        self._next += 1
        self.pending[seq] = None
        self._impl.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        return seq

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        last = method.delivery_tag
        if method.multiple:
            tags = []
            for seq in self.pending:  # ascending: stop at the first one not covered
                if seq > last:
                    break
                tags.append(seq)
        else:
            tags = [last] if last in self.pending else []
        suspect = self._suspect
        for seq in tags:
            del self.pending[seq]
            if suspect and seq in suspect:
                suspect.discard(seq)
                self.settled.append((seq, False))
            else:
                self.settled.append((seq, ok))

    def _on_return(self, *_args: Any) -> None:
        self.returned += 1
        self._suspect.update(self.pending)

    def take_settled(self) -> list[tuple[int, bool]]:
        settled, self.settled = self.settled, []
        return settled

    def drain(self, more: Callable[[], bool] | None = None) -> None:
        """Wait (up to --timeout without progress) until every publish is confirmed."""
        while self.pending:
            before = len(self.pending)
            self.session.pump(lambda n=before: len(self.pending) != n or bool(more and more()),  # type: ignore[misc]
                              self.session.options.timeout)
            require_open(self.channel, "publish")
            if len(self.pending) == before:
                raise BrokerUnavailable(f"{before} publish(es) not confirmed within {self.session.options.timeout}s",
                                        hint="nothing was lost: their sources were not acknowledged")
