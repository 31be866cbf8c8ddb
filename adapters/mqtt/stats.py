"""``stats``: a row for the broker (``$SYS``) and one per topic filter asked for.

The broker row (``queue`` ``$SYS``, ``type`` ``broker``) comes with no
argument, or when ``$SYS`` is named:

* ``depth``: messages the broker holds for sessions, queued for offline ones
  or in flight to connected ones: ``store/messages/count`` minus ``retained
  messages/count`` (mosquitto's store holds every retained message, its own
  ``$SYS`` ones included, once, plus each message waiting for delivery once,
  however many sessions wait for it).  That is what fills a broker's memory
  and disk when consumers are gone, so it is the figure ``--fail-above``
  watches; retained messages are a topic tree's business (its own rows).
* ``consumers``: clients connected (MQTT cannot tell subscribers from
  publishers); ``in_flight``, ``lag``, dead letters and ``oldest_age``: null.
* extras: ``offline_sessions`` (``clients/disconnected``: persistent sessions
  whose client is away), ``clients_total``, ``subscriptions``,
  ``store_messages``, ``store_bytes``, ``retained_messages`` (the broker's
  counter minus its own ``$SYS`` topics), ``received_per_minute``,
  ``sent_per_minute``, ``dropped_per_minute`` (mosquitto's 1-minute moving
  averages, per minute), ``messages_received``, ``messages_sent``,
  ``publish_dropped``, ``uptime_seconds``, ``version``.  ``stats --watch``
  rates come from ``messages_received`` / ``messages_sent``.

A topic filter's row (``type`` ``retained``): ``depth`` is how many retained
messages the filter matches, from one scan (:mod:`.scan`), ``retained_bytes``
their payloads' size.  ``#`` never matches ``$SYS`` topics, so the broker's
own retained figures are never counted as the user's.  A filter that matches
nothing is a row with depth 0: a filter always "exists".
"""

from __future__ import annotations

from collections.abc import Sequence

from qctl.adapters.mqtt.broker import STATS_NEEDS, Figures, SysWatch, missing_notice
from qctl.adapters.mqtt.connection import Connection
from qctl.adapters.mqtt.scan import RetainedScan
from qctl.adapters.mqtt.topics import BROKER_ROW, check_filter
from qctl.models import QueueStats

BACKEND = "mqtt"
EXTRAS = ("offline_sessions", "clients_total", "subscriptions", "store_messages", "store_bytes",
          "received_per_minute", "sent_per_minute", "dropped_per_minute", "messages_received", "messages_sent",
          "publish_dropped", "uptime_seconds", "version")


def broker_row(figures: Figures) -> QueueStats:
    store, counter = figures.get("store_messages"), figures.get("retained_messages_counter")
    depth = max(0, store - counter) if store is not None and counter is not None else None
    extra = {name: figures.get(name) for name in EXTRAS}
    extra["retained_messages"] = (max(0, counter - figures.retained_sys_topics) if counter is not None else None)
    return QueueStats(backend=BACKEND, queue=BROKER_ROW, type="broker", depth=depth,
                      consumers=figures.get("clients_connected"), extra=extra,
                      total_in=figures.get("messages_received"), total_out=figures.get("messages_sent"))


def filter_row(conn: Connection, topic_filter: str) -> QueueStats:
    found = RetainedScan(conn, topic_filter).collect()
    size = sum(len(message.payload) for message in found.values())
    return QueueStats(backend=BACKEND, queue=topic_filter, type="retained", depth=len(found),
                      extra={"retained_bytes": size})


def collect(conn: Connection, patterns: Sequence[str], notices: list[str], watch: SysWatch | None) -> list[QueueStats]:
    for pattern in patterns:
        if pattern != BROKER_ROW:
            check_filter(pattern)
    rows = []
    for pattern in dict.fromkeys(patterns or [BROKER_ROW]):
        if pattern == BROKER_ROW:
            sys_watch = watch or SysWatch(conn)
            figures = sys_watch.read(STATS_NEEDS)
            sys_watch.stop()
            notice = missing_notice(figures, conn.where)
            if notice:
                notices.append(notice)
            rows.append(broker_row(figures))
        else:
            rows.append(filter_row(conn, pattern))
    return rows
