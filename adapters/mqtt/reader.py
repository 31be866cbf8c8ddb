"""The engine's source on MQTT: the retained messages of a topic filter, as one scan found them.

``read`` hands out the snapshot of one :class:`~.scan.RetainedScan` in chunks;
``settle`` clears a topic by publishing an empty retained message to it (QoS 1,
after its PUBACK); ``keep`` does nothing, since reading took nothing.  That
gives ``purge --backup/--where``, ``backup`` and ``move`` from retained topics
with the core's rules.

Clearing only what was read
---------------------------
MQTT has no "delete if unchanged".  The scan's subscription stays open while
the pass runs (MQTT 5, retain as published, no local; :class:`~.scan.Tracker`),
so every retained publish another client makes under the filter reaches qctl:

* a topic that got a new value after the scan is handed out with that value
  (MQTT 5), and one cleared meanwhile is not handed out at all;
* ``settle`` clears a topic only if nothing changed it since it was handed out;
  otherwise it reports it gone (False) and leaves the new value alone;
* a new value that reaches the broker while qctl's clear is on its way (less
  than a round trip before it) arrives before the clear's PUBACK: mosquitto
  handles one client's packets in order and forwards a publish before it acks
  the next, so qctl knows its clear wiped a value it never read, and publishes
  that value back (retained, with its properties) and says so in a notice.

What cannot be guaranteed: subscribers see the value, the clear and the value
again in that last case; a publish arriving during that republish is not
protected again (a notice says so); a broker that forwards and acknowledges out
of order (a clustered one) weakens the round-trip rule; and MQTT 3.1.1 cannot
say whether a live message was retained, so there a topic with any live
traffic after the scan is left in place, and a value caught in flight is
reported, not restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qctl.adapters.mqtt.connection import Connection, Sent
from qctl.adapters.mqtt.messages import from_packet, republish_properties
from qctl.adapters.mqtt.notices import Notices
from qctl.adapters.mqtt.scan import RetainedScan
from qctl.primitives import ReadMode, SourceTraits, Taken

CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Handle:
    topic: str
    version: int  # the tracker's count of changes to the topic when it was handed out


class RetainedReader:
    def __init__(self, conn: Connection, queue: str, mode: ReadMode, scan: RetainedScan, notices: Notices) -> None:
        self.conn = conn
        self.queue = queue
        self.mode = mode
        self.scan = scan
        self.notices = notices
        self.traits = SourceTraits(chunk=CHUNK)
        self._items = list(scan.found.items())
        self._next = 0
        self._closed = False

    def total(self) -> int:
        return len(self._items)

    def read(self, limit: int) -> list[Taken]:
        self.conn.poll()  # changes since the last chunk
        tracker = self.scan.tracker
        taken: list[Taken] = []
        while self._next < len(self._items) and len(taken) < limit:
            topic, message = self._items[self._next]
            self._next += 1
            version = tracker.version(topic)
            if version and self.conn.v5:
                message = tracker.latest[topic]
                if not message.payload:
                    continue  # cleared by someone else since the scan: nothing to hand out
            taken.append(Taken(from_packet(message, self.queue, live=False), Handle(topic, version)))
        return taken

    def settle(self, taken: Sequence[Taken]) -> list[bool]:
        conn, tracker = self.conn, self.scan.tracker
        conn.poll()
        results = [False] * len(taken)
        sent: list[tuple[int, Handle, Sent]] = []
        at_ack: dict[int, int] = {}  # index -> the topic's change count when its clear was acknowledged
        for index, item in enumerate(taken):
            handle = item.handle
            assert isinstance(handle, Handle)
            if tracker.version(handle.topic) != handle.version:
                self.notices.count("replaced", "retained message(s) were replaced by another client after qctl "
                                   "read them: the new value was left in place")
                continue

            def acked(_sent: Sent, index: int = index, topic: str = handle.topic) -> None:
                at_ack[index] = tracker.version(topic)

            sent.append((index, handle, conn.publish(handle.topic, b"", qos=1, retain=True, on_ack=acked)))
        conn.wait_sent([clear for _, _, clear in sent])
        for index, handle, clear in sent:
            assert clear.reason is not None
            results[index] = clear.reason < 0x80
            if results[index] and at_ack.get(index, handle.version) != handle.version:
                self._caught_in_flight(handle.topic)
        return results

    def _caught_in_flight(self, topic: str) -> None:
        """A new value reached the broker just before qctl's clear did: put it back."""
        conn, tracker = self.conn, self.scan.tracker
        latest = tracker.latest.get(topic)
        if not conn.v5 or latest is None:
            self.notices.count("inflight-3", f"topic(s) got a message just before qctl cleared them; MQTT 3.1.1 "
                               f"cannot say whether it was retained: if it was, it was cleared too (e.g. {topic!r})")
            return
        if not latest.payload:
            return  # someone else cleared it too: nothing to put back
        before = tracker.version(topic)
        conn.wait_sent([conn.publish(topic, latest.payload, qos=1, retain=True,
                                     properties=republish_properties(latest))])
        if tracker.version(topic) != before:
            self.notices.count("inflight-again", f"topic(s) kept changing while qctl cleared them and put the new "
                               f"value back: check them (e.g. {topic!r})")
        else:
            self.notices.count("inflight", "retained message(s) got a new value just before qctl cleared them: "
                               "the new value was published back")

    def keep(self, taken: Sequence[Taken]) -> None:
        pass  # nothing was taken: a kept message is still its topic's retained value

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.scan.stop()
