"""The broker's own figures, from ``$SYS/broker/#`` (mosquitto's names; other brokers publish fewer or none).

mosquitto publishes each ``$SYS`` value as a retained message when it
changes, every ``sys_interval`` seconds (10 by default), so a new subscriber
gets the current values at once, as retained messages; qctl waits for them
with the same marker as a retained scan (:mod:`qctl.adapters.mqtt.scan`).

One catch in mosquitto 2.0: it gives those retained values a message expiry
of 60 s and republishes a value only when it changes, so a figure that has
not changed for a minute is simply not there (fixed in 2.1, "Don't expire
retained messages", 62a43617).  When a figure qctl needs is missing, it waits
for the next live update, which carries every figure that changed since the
last one; the clients' counts change with qctl's own connection, so
``offline_sessions`` can be worked out as total minus connected.  A figure
still missing after that is null, and a notice says why.  The wait is bounded
by ``--timeout`` and, if the URL or profile sets it, by ``sys_interval``
(seconds, as in mosquitto.conf) plus one.

The figures include qctl's own connection once a live update has arrived
(one more client, one or two more subscriptions).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from qctl.adapters.mqtt.connection import Connection
from qctl.adapters.mqtt.messages import topic_of
from qctl.adapters.mqtt.scan import MARKER_LOST, MARKER_PREFIX
from qctl.errors import UsageError

SYS_FILTER = "$SYS/broker/#"
PREFIX = "$SYS/broker/"
BURST = 0.2  # seconds of quiet that end one live $SYS update (mosquitto sends it in one go)
DEFAULT_SYS_INTERVAL = 10.0  # mosquitto's default

# $SYS/broker/<topic> -> qctl's name for it
FIGURES = {
    "version": "version",
    "uptime": "uptime_seconds",
    "clients/connected": "clients_connected",
    "clients/disconnected": "offline_sessions",
    "clients/total": "clients_total",
    "clients/expired": "sessions_expired",
    "subscriptions/count": "subscriptions",
    "store/messages/count": "store_messages",
    "store/messages/bytes": "store_bytes",
    "retained messages/count": "retained_messages_counter",
    "messages/received": "messages_received",
    "messages/sent": "messages_sent",
    "publish/messages/dropped": "publish_dropped",
    "load/messages/received/1min": "received_per_minute",
    "load/messages/sent/1min": "sent_per_minute",
    "load/publish/dropped/1min": "dropped_per_minute",
}
STATS_NEEDS = ("clients_connected", "offline_sessions", "subscriptions", "store_messages", "store_bytes",
               "retained_messages_counter", "received_per_minute", "sent_per_minute")
SESSION_NEEDS = ("offline_sessions", "store_messages", "store_bytes")


def _value(name: str, text: str) -> Any:
    if name == "version":
        return text
    if name == "uptime_seconds":
        text = text.split()[0] if text else text
    try:
        return float(text) if name.endswith("per_minute") else int(text)
    except ValueError:
        return None


@dataclass(slots=True)
class Figures:
    values: dict[str, Any] = field(default_factory=dict)
    retained_sys_topics: int = 0  # how many $SYS/broker topics the broker holds retained (its own)
    missing: tuple[str, ...] = ()
    live_update: bool = False  # a live update arrived (values then include qctl's own connection)

    def get(self, name: str) -> Any:
        return self.values.get(name)


class SysWatch:
    """A subscription to ``$SYS/broker/#`` on a connection, kept for as long as figures are wanted."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.figures = Figures()
        self._retained_topics: set[str] = set()
        self._live_updates = 0  # live uptime messages seen: one per $SYS update
        self._last = time.monotonic()
        self._marker = MARKER_PREFIX + conn.client_id + "/sys"
        self._marker_seen = False
        self._started = False
        interval = conn.options.setting("sys_interval")
        try:
            self.interval = float(interval) if interval is not None else None
        except ValueError:
            raise UsageError(f"sys_interval must be seconds, not {interval!r}") from None

    def _sink(self, message: mqtt.MQTTMessage) -> None:
        self._last = time.monotonic()
        topic = topic_of(message)
        if topic == self._marker:
            self._marker_seen = True
            return
        if not topic.startswith(PREFIX):
            return
        if message.retain:
            self._retained_topics.add(topic)
        elif topic == PREFIX + "uptime":
            self._live_updates += 1
        name = FIGURES.get(topic[len(PREFIX):])
        if name is not None:
            value = _value(name, bytes(message.payload).decode("utf-8", "replace"))
            if value is not None:
                self.figures.values[name] = value

    def _wait_budget(self) -> float:
        interval = self.interval if self.interval is not None else DEFAULT_SYS_INTERVAL
        return min(self.conn.timeout, interval + 1.0)

    def start(self) -> None:
        """Subscribe and take in the retained values (one round trip)."""
        if self._started:
            return
        self._started = True
        conn = self.conn
        conn.sink = self._sink
        reasons = conn.subscribe([(SYS_FILTER, SubscribeOptions(qos=0)), (self._marker, SubscribeOptions(qos=0))])
        if reasons[0] >= 0x80:
            self.figures.missing = tuple(FIGURES.values())
            return
        if len(reasons) > 1 and reasons[1] < 0x80:
            conn.publish(self._marker, b"sys", qos=1)
            conn.pump(lambda: self._marker_seen or time.monotonic() - self._last > MARKER_LOST, None)
        else:
            conn.pump(lambda: time.monotonic() - self._last > BURST * 2, None)

    def read(self, needs: tuple[str, ...]) -> Figures:
        """The figures, waiting for one live update if some of ``needs`` are missing."""
        self.start()
        self._derive()
        if any(self.figures.get(name) is None for name in needs):
            self.next_update(needs)
        return self._result(needs)

    def _derive(self) -> None:
        """``offline_sessions`` from the clients' total and connected counts, when only those came."""
        values = self.figures.values
        if values.get("offline_sessions") is None and None not in (values.get("clients_total"),
                                                                   values.get("clients_connected")):
            values["offline_sessions"] = max(0, values["clients_total"] - values["clients_connected"])

    def next_update(self, needs: tuple[str, ...] = ()) -> bool:
        """Wait for a live update that starts after this call (what changed before it is then in)."""
        self.start()
        conn = self.conn
        seen = self._live_updates
        deadline = time.monotonic() + self._wait_budget()
        if not conn.pump(lambda: self._live_updates > seen, max(0.0, deadline - time.monotonic())):
            return False
        # The update is one burst: take it all in (or stop early once everything needed is there).
        def enough() -> bool:
            self._derive()
            return bool(needs) and all(self.figures.get(name) is not None for name in needs)

        conn.pump(lambda: time.monotonic() - self._last > BURST or enough(),
                  max(BURST * 3, deadline - time.monotonic()))
        self.figures.live_update = True
        return True

    def fresh(self, needs: tuple[str, ...]) -> Figures:
        """Figures from a live update that began after everything this connection did so far."""
        self.start()
        # One round trip first: a live update already on its way was computed before what we did.
        self.conn.unsubscribe([self._marker])
        self.next_update()
        return self._result(needs)

    def _result(self, needs: tuple[str, ...]) -> Figures:
        self._derive()
        values = self.figures.values
        self.figures.retained_sys_topics = len(self._retained_topics)
        self.figures.missing = tuple(name for name in needs if values.get(name) is None)
        return Figures(values=dict(values), retained_sys_topics=self.figures.retained_sys_topics,
                       missing=self.figures.missing, live_update=self.figures.live_update)

    def stop(self) -> None:
        """Unsubscribe, so that the next scan on this connection gets no $SYS traffic."""
        if self.conn.sink == self._sink:
            self.conn.sink = None
        if self._started:
            self._started = False
            self.conn.unsubscribe([SYS_FILTER, self._marker])


def missing_notice(figures: Figures, where: str) -> str | None:
    if not figures.missing:
        return None
    names = ", ".join(figures.missing)
    if len(figures.missing) == len(FIGURES):
        return f"{where}: the broker publishes no $SYS figures qctl can read (or this user may not read $SYS)"
    return (f"{where}: $SYS did not give {names} (mosquitto 2.0 drops a $SYS value 60 s after its last change, "
            f"until it changes again; set sys_interval=SECONDS if the broker's is not 10)")
