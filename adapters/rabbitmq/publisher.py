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

from typing import Any

from pika.spec import Basic, BasicProperties

from qctl.adapters.rabbitmq import compat
from qctl.adapters.rabbitmq.connection import Session, require_open
from qctl.errors import BrokerUnavailable


class ConfirmedPublisher:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.channel = session.channel()
        self._impl: Any = compat.channel_impl(self.channel)
        self._next = 1
        self.pending: dict[int, None] = {}  # seqs published, not yet confirmed (ascending)
        self._suspect: set[int] = set()
        self.results: dict[int, bool] = {}  # confirmed (True) or refused/returned (False), until collected
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
                self.results[seq] = False
            else:
                self.results[seq] = ok

    def _on_return(self, *_args: Any) -> None:
        self.returned += 1
        self._suspect.update(self.pending)

    def wait_below(self, count: int) -> None:
        """Let confirms come in until fewer than ``count`` publishes await one (bounds memory on both sides)."""
        while len(self.pending) >= count:
            before = len(self.pending)
            self.session.pump(lambda n=before: len(self.pending) != n, self.session.options.timeout)  # type: ignore[misc]
            require_open(self.channel, "publish")
            if len(self.pending) == before:
                raise BrokerUnavailable(f"{before} publish(es) not confirmed within {self.session.options.timeout}s",
                                        hint="nothing was lost: their sources were not acknowledged")

    def collect(self, seqs: list[int], *, wait: bool) -> list[bool] | None:
        """The outcome of each of ``seqs``; None while some are unknown (only when not ``wait``).

        Waiting gives up after --timeout without a single confirm: nothing is lost, as a source is
        only settled for what was confirmed."""
        if not wait:
            self.session.poll_now()  # read whatever confirms already arrived
        while any(seq not in self.results for seq in seqs):
            if not wait:
                return None
            before = len(self.pending)
            self.session.pump(lambda n=before: len(self.pending) != n, self.session.options.timeout)  # type: ignore[misc]
            require_open(self.channel, "publish")
            if len(self.pending) == before:
                raise BrokerUnavailable(f"{before} publish(es) not confirmed within {self.session.options.timeout}s",
                                        hint="nothing was lost: their sources were not acknowledged")
        return [self.results.pop(seq) for seq in seqs]
