"""Retained messages under a filter, with one subscription however big the tree; and live taps.

How a scan knows it is complete
-------------------------------
A broker sends a new subscription the retained messages it matches, then
nothing: MQTT has no "end of retained" packet (``mosquitto_sub
--retained-only`` waits for a non-retained message or its ``-W`` timeout).
qctl subscribes, in the same SUBSCRIBE, to a private marker topic
``$qctl/scan/<client id>`` and then publishes one message there.  mosquitto
queues a subscription's retained messages for the client before it reads the
next packet, and writes a client's messages in order, so the marker arrives
after the last retained message, and so does the PUBACK for it (which also
ends the scan, for when mosquitto dropped the marker's QoS 0 echo to a client
with a long backlog): the scan ends one round trip after the tree, not after
a timeout.  Topics that start with ``$`` match no wildcard, so no
other subscriber (not even one to ``#``) sees the marker.  If the broker
refuses the marker (an ACL), the scan falls back to a quiet period
(:data:`QUIET` after the last message); otherwise it waits for the marker as
long as the broker keeps sending, and a broker silent for ``--timeout`` is an
error, never a short scan.

The subscription is QoS 0: mosquitto queues a QoS 0 retained message for a
connected client unconditionally, while at QoS 1 or 2 it would drop what does
not fit ``max_inflight_messages + max_queued_messages`` (1,020 by default)
and count them as dropped.  The price: a QoS 0 delivery cannot show the QoS a
retained message was stored with.

After the snapshot (:class:`Tracker`)
-------------------------------------
A scan that will be settled (purge, move) keeps its subscription, MQTT 5 with
"retain as published" and "no local": every retained publish another client
makes under the filter afterwards arrives flagged retained, and qctl's own
clears do not echo back.  The reader uses that to clear a topic only while it
still holds the value that was read (see :mod:`qctl.adapters.mqtt.reader`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from qctl.adapters.mqtt import topics
from qctl.adapters.mqtt.connection import Connection, Sent
from qctl.adapters.mqtt.messages import Packet, packet_of, topic_of
from qctl.errors import BrokerUnavailable

QUIET = 0.5  # seconds without a message that end a scan whose marker's echo did not come
MARKER_LOST = 2.0  # $SYS: seconds without anything that mean its marker was refused
MARKER_PREFIX = "$qctl/scan/"
_tokens = itertools.count(1)


@dataclass(slots=True)
class Tracker:
    """What happened under the filter after the snapshot: per topic, how often it changed and its last value.

    MQTT 5: only publishes flagged retained count (retain as published), an empty one is a clear.  MQTT
    3.1.1 cannot tell retained from live publishes, so any non-empty message counts as a change (the safe
    side: a topic is then left in place rather than cleared), and an empty one (most likely qctl's own
    clear echoing back: 3.1.1 has no "no local") does not."""

    v5: bool
    versions: dict[str, int] = field(default_factory=dict)
    latest: dict[str, Packet] = field(default_factory=dict)

    def note(self, packet: Packet) -> None:
        if self.v5 and not packet.retain:
            return
        if not self.v5 and not packet.payload:
            return
        self.versions[packet.topic] = self.versions.get(packet.topic, 0) + 1
        self.latest[packet.topic] = packet

    def version(self, topic: str) -> int:
        return self.versions.get(topic, 0)


class RetainedScan:
    """The retained messages under ``topic_filter``, in the order the broker sends them (for mosquitto:
    the order their topics were first created)."""

    def __init__(self, conn: Connection, topic_filter: str, *, track: bool = False) -> None:
        self.conn = conn
        self.filter = topic_filter
        self.track = track
        self.found: dict[str, Packet] = {}  # topic -> its retained message, first-seen order
        self.tracker = Tracker(conn.v5)
        self.complete = False
        self.started = time.monotonic()
        self._arrived: list[Packet] = []
        self._marker_topic = MARKER_PREFIX + conn.client_id
        self._token = f"{next(_tokens)}".encode()
        self._marker_seen = False  # the marker's echo: the tree is complete
        self._puback_seen = False  # the marker's PUBACK (see _marker_acked)
        self._quiet_only = False  # no marker: the scan ends after QUIET seconds without a message
        self._last = time.monotonic()

    def _sink(self, message: mqtt.MQTTMessage) -> None:
        self._last = time.monotonic()
        topic = topic_of(message)
        if topic == self._marker_topic:
            if bytes(message.payload) == self._token:
                self._marker_seen = True
            return
        if not topics.matches(self.filter, topic):
            return  # another subscription's traffic still arriving on this connection
        if self.complete:
            self.tracker.note(packet_of(message, topic))
        else:
            self._arrived.append(packet_of(message, topic))

    def _start(self) -> None:
        """Subscribe, and publish the marker (unless the broker refused its subscription: quiet mode)."""
        conn = self.conn
        conn.sink = self._sink
        options = SubscribeOptions(qos=0, noLocal=True, retainAsPublished=True)
        reasons = conn.subscribe([(self.filter, options), (self._marker_topic, SubscribeOptions(qos=0))])
        if reasons[0] >= 0x80:
            conn.sink = None
            raise BrokerUnavailable(f"{conn.where}: the broker refused the subscription to {self.filter!r} "
                                    f"(reason 0x{reasons[0]:02X})",
                                    hint="the user may not be allowed to read these topics (ACL)")
        self._last = time.monotonic()
        if len(reasons) < 2 or reasons[1] >= 0x80:
            self._quiet_only = True
            return
        conn.publish(self._marker_topic, self._token, qos=1, on_ack=self._marker_acked)

    def _marker_acked(self, sent: Sent) -> None:
        """mosquitto drops a QoS 0 delivery (the marker's echo) to a client with more than max_queued_messages
        packets waiting to be written, which a big tree read by a slow client can make it; the PUBACK is never
        dropped, and then comes after the tree.  A PUBACK without the echo ends the scan after a quiet
        period (the echo may also be missing because an ACL refused the marker, when the PUBACK can come
        first); a refusing PUBACK (MQTT 5) means quiet mode."""
        if sent.reason is not None and sent.reason < 0x80:
            self._puback_seen = True
        else:
            self._quiet_only = True

    def messages(self) -> Generator[Packet, None, None]:
        """Each retained message as it arrives (a topic once: the first value seen); ends with the tree.

        While the marker is awaited there is no quiet period: a broker that sends nothing for ``--timeout``
        is an error (exit 3), not the end of the tree, so a stalled broker never makes a short scan."""
        self._start()
        conn = self.conn
        try:
            while True:
                batch, self._arrived = self._arrived, []
                for item in batch:
                    topic = item.topic
                    if not item.retain:
                        continue  # live traffic during the scan
                    if not item.payload:
                        self.found.pop(topic, None)  # a clear published during the scan (MQTT 5)
                        continue
                    first = topic not in self.found
                    self.found[topic] = item  # a second value during the scan is the newer one
                    if first:
                        yield item
                if self._arrived:
                    continue
                if self._marker_seen:
                    break
                idle = time.monotonic() - self._last
                if self._quiet_only or self._puback_seen:
                    if idle >= QUIET:
                        break
                    wait = QUIET - idle
                else:
                    wait = conn.timeout - idle
                    if wait <= 0:
                        raise BrokerUnavailable(f"{conn.where}: the broker sent nothing for {conn.timeout:g}s in "
                                                f"the middle of the retained messages of {self.filter!r}",
                                                hint="is it overloaded? (--timeout)")
                conn.pump(lambda: bool(self._arrived) or self._marker_seen or self._puback_seen, wait)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self.complete:
            return
        self.complete = True
        conn = self.conn
        leftovers, self._arrived = self._arrived, []
        for packet in leftovers:  # arrived after the caller stopped reading: changes, for the tracker
            self.tracker.note(packet)
        if self.track:
            conn.unsubscribe([self._marker_topic])
        else:
            conn.sink = None
            conn.unsubscribe([self.filter, self._marker_topic])

    @property
    def tracking(self) -> bool:
        """Complete, and still told of every change under the filter."""
        return self.complete and self.track and self.conn.sink == self._sink

    def collect(self) -> dict[str, Packet]:
        """Run the whole scan; the retained message of every topic under the filter."""
        for _ in self.messages():
            pass
        return self.found

    def stop(self) -> None:
        """End the live tracking (the reader is done)."""
        if self.conn.sink == self._sink:
            self.conn.sink = None
            try:
                self.conn.unsubscribe([self.filter])
            except BrokerUnavailable:
                pass


def tap(conn: Connection, topic_filter: str, count: int, seconds: float) -> Iterator[Packet]:
    """Live traffic under ``topic_filter``: up to ``count`` non-retained messages within ``seconds``.

    Subscribed at QoS 2 so a message arrives with the QoS it was published with, and (MQTT 5) with
    retain handling 2, so the retained ones are not even sent.  qctl acknowledges what it receives on
    its own subscription, which affects no other client."""
    arrived: list[Packet] = []

    def sink(message: mqtt.MQTTMessage) -> None:
        arrived.append(packet_of(message))

    conn.sink = sink
    options = SubscribeOptions(qos=2, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
    reasons = conn.subscribe([(topic_filter, options)])
    if reasons[0] >= 0x80:
        conn.sink = None
        raise BrokerUnavailable(f"{conn.where}: the broker refused the subscription to {topic_filter!r} "
                                f"(reason 0x{reasons[0]:02X})", hint="the user may not be allowed to read these topics")
    deadline = time.monotonic() + seconds
    given = 0
    try:
        while given < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not arrived:
                conn.pump(lambda: bool(arrived), remaining)
                continue
            message = arrived.pop(0)
            if message.retain and not conn.v5:
                continue  # MQTT 3.1.1 sends the retained ones at subscribe, flagged
            if not topics.matches(topic_filter, message.topic):
                continue
            given += 1
            yield message
    finally:
        conn.sink = None
