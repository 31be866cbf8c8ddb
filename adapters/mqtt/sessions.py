"""``purge --session CLIENT_ID``: drop an offline persistent session and the messages queued for it.

How: connect as that client id with clean start and session expiry 0, then
disconnect.  The broker discards the old session (subscriptions and queued
messages) and keeps none for the new connection.

Is that client connected?
-------------------------
MQTT allows one connection per client id: connecting as it takes a live
connection over (the broker closes the old one).  So qctl must know *before*
connecting, and mosquitto 2.0 has no way to ask: no per-client API, and
``$SYS`` has only counts (``clients/disconnected`` is how many persistent
sessions are offline, not whose).  What qctl can know, it uses:

* ``$SYS/broker/clients/disconnected`` is 0: the broker has no offline session
  at all, so this client's is not one (it is connected, or has none): exit 4.
* the broker's log, when qctl can read it (``broker_log=PATH`` in the URL or
  profile; mosquitto's ``log_dest file``, which it flushes line by line, with
  connection messages on, as Debian's packaged config has): the client's last
  "New client connected ... as ID" against its last "Client ID disconnected /
  closed its connection / has exceeded timeout ...", read from the end of the
  file.  Connected: refused (exit 2).  Disconnected: dropped.  (A log written
  through ``log_dest stdout`` into a file is block-buffered and lags: do not
  point qctl at one.)
* otherwise qctl cannot tell, and refuses (exit 2) saying so.

``--force`` connects as the client whatever the evidence (and so disconnects
it if it is connected).  The result reports what the broker's figures said
before and after (``offline_sessions``, ``store_messages``, ``store_bytes``
from ``$SYS``, from updates the broker computed just before and just after the
drop: up to two ``sys_interval`` of waiting); ``queued`` is the drop in stored messages, exact only when nothing else
changed the store meanwhile.  A dry run (and so the typed confirmation)
shows ``queued`` as what the broker holds for all sessions together, an upper
bound for this one: mosquitto does not count per session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from qctl.adapters.mqtt.broker import SESSION_NEEDS, Figures, SysWatch, missing_notice
from qctl.adapters.mqtt.connection import Connection, open_as
from qctl.errors import LocalFileError, QctlError, QueueNotFound, Refused, UsageError
from qctl.options import ConnectOptions

LOG_TAIL = 8 << 20  # bytes of the broker's log read from its end
CONNECTED = re.compile(r"New client connected from \S+ as (?P<id>.+) \(p\d+, c\d, k\d+(, u'.*')?\)\.$")
DISCONNECTED = (
    re.compile(r"Client (?P<id>.+) (disconnected\.|closed its connection\.|has exceeded timeout, disconnecting\."
               r"|disconnected due to .+\.|disconnected, not authorised\.|been disconnected by administrative "
               r"action\.|disconnected: .+\.)$"),
    re.compile(r"Socket error on client (?P<id>.+), disconnecting\.$"),
    re.compile(r"Bad socket read/write on client (?P<id>.+): .+$"),
    re.compile(r"Expiring client (?P<id>.+) due to timeout\.$"),
)
TIMESTAMP = re.compile(r"^(\d+|\d{4}-\d\d-\d\dT[\d:]+(\.\d+)?[^\s]*):\s")


@dataclass(frozen=True, slots=True)
class Evidence:
    connected: bool | None
    how: str


def check_client_id(client_id: str) -> None:
    if not client_id:
        raise UsageError("--session needs a client id")
    try:
        encoded = client_id.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"client id {client_id!r} is not valid UTF-8") from None
    if len(encoded) > 65_535 or "\x00" in client_id:
        raise UsageError(f"client id {client_id!r} cannot be an MQTT client id (no U+0000, at most 65,535 bytes)")


def log_evidence(path: str, client_id: str) -> Evidence:
    """The client's last connect or disconnect line in mosquitto's log."""
    expanded = os.path.expanduser(path)
    try:
        with open(expanded, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - LOG_TAIL))
            tail = file.read()
    except OSError as exc:
        raise LocalFileError(f"cannot read the broker log {path!r}: {exc.strerror}",
                             hint="broker_log names mosquitto's log file (log_dest file), readable by this user"
                             ) from None
    lines = tail.decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        text = TIMESTAMP.sub("", line.strip(), count=1)
        match = CONNECTED.search(text)
        if match and match.group("id") == client_id:
            return Evidence(True, f"the broker log's last line about it says it connected: {line.strip()!r}")
        for pattern in DISCONNECTED:
            match = pattern.search(text)
            if match and match.group("id") == client_id:
                return Evidence(False, f"the broker log's last line about it says it left: {line.strip()!r}")
    return Evidence(None, f"the broker log {path!r} does not mention it (in its last {LOG_TAIL >> 20} MiB)")


def evidence(options: ConnectOptions, client_id: str) -> Evidence:
    path = options.setting("broker_log")
    if path:
        return log_evidence(str(path), client_id)
    return Evidence(None, "mosquitto has no way to tell whether a client is connected without taking its connection "
                          "over, and no broker_log was given")


def drop(conn: Connection, watch: SysWatch, client_id: str, *, force: bool, dry_run: bool,
         notices: list[str]) -> dict[str, Any]:
    check_client_id(client_id)
    needs = (*SESSION_NEEDS, "retained_messages_counter")
    # A dry run (the confirmation's preview) takes the retained values, up to one sys_interval old; the drop
    # itself waits for a live update, so that "before" is the store just before it.
    before = watch.read(needs) if dry_run else watch.fresh(needs)
    known = evidence(conn.options, client_id)
    offline = before.get("offline_sessions")
    if not force:
        if known.connected:
            raise Refused(f"client {client_id!r} is connected ({known.how}): refusing to take its connection over",
                          hint="--force disconnects it and drops its session")
        if offline == 0:
            raise QueueNotFound(f"the broker has no offline session ($SYS clients/disconnected is 0), so "
                                f"{client_id!r} has none to drop (it is connected, or has no session)",
                                hint="--force connects as it anyway, disconnecting it if it is connected")
        if known.connected is None:
            raise Refused(f"cannot tell whether client {client_id!r} is connected: {known.how}",
                          hint="add --force if you know it is offline (if it is in fact connected, --force disconnects "
                               "it), or give broker_log=PATH (mosquitto's log_dest file) to let qctl read it there")
    record = _record(client_id, known, before, dry_run=dry_run, force=force)
    if dry_run:
        record["queued"] = _held(before)
        _note_missing(before, conn, notices)
        return record
    try:
        taken = open_as(conn.options, conn.where, client_id)
    except QctlError as exc:
        raise type(exc)(f"connecting as {client_id!r} to drop its session: {exc.args[0]}", hint=exc.hint) from None
    taken.close()
    after = watch.fresh(SESSION_NEEDS)
    record["dropped"] = True
    for name in SESSION_NEEDS:
        record[f"{name}_after"] = after.get(name)
    if before.get("store_messages") is not None and after.get("store_messages") is not None:
        record["queued"] = max(0, before.get("store_messages") - after.get("store_messages"))
    _note_missing(after, conn, notices)
    return record


def _held(figures: Figures) -> int | None:
    store, retained = figures.get("store_messages"), figures.get("retained_messages_counter")
    if store is None or retained is None:
        return None
    return max(0, int(store) - int(retained))


def _record(client_id: str, known: Evidence, before: Figures, *, dry_run: bool, force: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"client_id": client_id, "dropped": False, "dry_run": dry_run, "forced": force,
                              "connected": known.connected, "evidence": known.how, "queued": None}
    for name in SESSION_NEEDS:
        record[f"{name}_before"] = before.get(name)
        record[f"{name}_after"] = None
    return record


def _note_missing(figures: Figures, conn: Connection, notices: list[str]) -> None:
    notice = missing_notice(figures, conn.where)
    if notice:
        notices.append(notice)
