"""The MQTT :class:`~qctl.adapter.Adapter`: one connection per command, opened lazily; modules do the work.

paho-mqtt is imported here at the top (through :mod:`.connection`), so a
missing ``qctl[mqtt]`` extra is the registry's exit 2 "install qctl[mqtt]".

A scan's snapshot is reused for a moment (:data:`FRESH`): ``purge`` asks for
the depth (one scan, for the confirmation), then purges or opens its pass;
the second step takes the first scan, whose subscription stayed open and
tracked every change since, instead of scanning the tree again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import paho.mqtt.client  # noqa: F401 - here so that a missing extra is the registry's "install qctl[mqtt]"

from qctl.adapter import Adapter, ConnectOptions
from qctl.adapters.mqtt import ping as pinging
from qctl.adapters.mqtt import sessions
from qctl.adapters.mqtt import stats as statistics
from qctl.adapters.mqtt.broker import SysWatch
from qctl.adapters.mqtt.connection import Connection
from qctl.adapters.mqtt.destination import MQTTDestination
from qctl.adapters.mqtt.messages import from_packet
from qctl.adapters.mqtt.notices import Notices
from qctl.adapters.mqtt.reader import RetainedReader
from qctl.adapters.mqtt.scan import RetainedScan, tap
from qctl.adapters.mqtt.topics import check_filter
from qctl.errors import Unsupported, UsageError
from qctl.models import Check, Message, PeekRequest, PurgeResult, QueueStats
from qctl.primitives import ReadMode
from qctl.urls import redact

FRESH = 5.0  # seconds a tracked scan may be reused by the next step of the same command
NO_DEAD_LETTERS = ("MQTT has no dead letters, so there is nothing to redrive "
                   "(retained messages move with qctl move; offline sessions go with purge --session)")


class MQTTAdapter(Adapter):
    backend = "mqtt"
    understands = frozenset({"--live", "--session"})

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.where = redact(str(options.url))
        if options.url.path.strip("/"):
            raise UsageError(f"{self.where}: an MQTT URL has no path ({options.url.path!r})",
                             hint="options go after a slash: mqtts://host:8883/?ca_file=/path/ca.crt")
        self._conn: Connection | None = None
        self._scan: tuple[RetainedScan, float] | None = None
        self.counted = Notices(self.notices)

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = Connection(self.options, self.where)
        return self._conn

    def check_name(self, queue: str) -> None:
        check_filter(queue)

    def names(self, prefix: str) -> list[str]:
        """No completion: topics exist only as retained messages or traffic, and listing them means
        scanning the broker's whole tree (``#``), too much for a keystroke."""
        return []

    # --- reading -----------------------------------------------------------------

    def _tracked_scan(self, queue: str) -> RetainedScan:
        """A complete scan of ``queue`` whose subscription keeps tracking changes (fresh, or reused)."""
        if self._scan is not None:
            scan, when = self._scan
            if scan.filter == queue and time.monotonic() - when < FRESH and scan.tracking:
                self.conn.poll()
                return scan
            scan.stop()
            self._scan = None
        scan = RetainedScan(self.conn, queue, track=True)
        scan.collect()
        self._scan = (scan, time.monotonic())
        return scan

    def stats(self, patterns: Sequence[str], *, groups: bool = False) -> list[QueueStats]:
        self._end_scan()
        if self._conn is None:  # counting needs no MQTT 5 feature, and 3.1.1 is the faster to decode
            self._conn = Connection(self.options, self.where, prefer_v5=False)
        return statistics.collect(self.conn, patterns, self.notices, None)

    def depth(self, queue: str) -> int:
        check_filter(queue)
        return len(self._tracked_scan(queue).found)

    def peek(self, queue: str, request: PeekRequest) -> Iterator[Message]:
        check_filter(queue)
        self._end_scan()
        if self.options.flags.get("live"):
            for message in tap(self.conn, queue, request.count, self.options.timeout):
                yield from_packet(message, queue, live=True)
            return
        messages = RetainedScan(self.conn, queue).messages()
        try:
            for given, message in enumerate(messages, start=1):
                yield from_packet(message, queue, live=False)
                if given >= request.count:
                    break
        finally:
            messages.close()  # its finally unsubscribes

    def purge(self, queue: str) -> PurgeResult:
        """Clear every retained message one scan found, a chunk of 1,000 at a time (PUBACKed)."""
        reader = self.reader(queue, ReadMode.DELETE)
        purged = 0
        try:
            while True:
                taken = reader.read(reader.traits.chunk)
                if not taken:
                    break
                purged += sum(reader.settle(taken))
        finally:
            reader.close()
        return PurgeResult(queue=queue, purged=purged)

    def reader(self, queue: str, mode: ReadMode) -> RetainedReader:
        if mode is ReadMode.MOVE and self.options.flags.get("redrive"):
            raise Unsupported(NO_DEAD_LETTERS)
        check_filter(queue)
        if mode is not ReadMode.READ and queue.startswith("$"):
            raise Unsupported(f"{queue!r}: topics starting with '$' belong to the broker; qctl clears none of them",
                              hint="peek and backup read them")
        scan = self._tracked_scan(queue)
        self._scan = None  # the reader owns it now (and stops it when it closes)
        return RetainedReader(self.conn, queue, mode, scan, self.counted)

    # --- writing -----------------------------------------------------------------

    def destination(self, queue: str) -> MQTTDestination:
        check_filter(queue)
        return MQTTDestination(self.conn, queue, self.counted, held=lambda: self._retained_payloads(queue))

    def _retained_payloads(self, queue: str) -> dict[str, bytes]:
        """Each topic under ``queue`` that holds a retained message now, with its payload.  Scanned on a
        connection of its own: the command's may be tracking a source tree, and a connection has one scan sink."""
        conn = Connection(self.options, self.where)
        try:
            return {topic: packet.payload for topic, packet in RetainedScan(conn, queue).collect().items()}
        finally:
            conn.close()

    def drop_session(self, client_id: str, *, force: bool, dry_run: bool) -> Mapping[str, Any]:
        self._end_scan()
        watch = SysWatch(self.conn)
        try:
            return sessions.drop(self.conn, watch, client_id, force=force, dry_run=dry_run, notices=self.notices)
        finally:
            watch.stop()

    def _end_scan(self) -> None:
        if self._scan is not None:
            self._scan[0].stop()
            self._scan = None

    def ping(self) -> list[Check]:
        return pinging.ping(self.options, self.where)

    def close(self) -> None:
        self._scan = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
