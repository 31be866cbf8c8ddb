"""``qctl ping`` for RabbitMQ: AMQP connect and login, version, the management API, permissions, round trip.

Permissions: an administrator's are read from ``/api/permissions/<vhost>/<user>`` (and topic
permissions); for other users (the API refuses them) each is probed on a queue name that does not
exist, which changes nothing: basic.get (read: 404 means allowed, 403 refused), a publish with no
route through the default exchange (write), and queue.delete of that missing queue (configure).
RabbitMQ's permissions are regular expressions over names, so a probe on ``qctl-ping-…`` speaks for
names like it; the administrator's reading shows the expressions.  qctl's commands need read (peek,
purge, backups, redrive, move) and write (redrive, move, restore), never configure.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import quote

import pika.exceptions as pe

from qctl.adapters.rabbitmq import compat
from qctl.adapters.rabbitmq.connection import Session, vhost_of
from qctl.adapters.rabbitmq.errors import ACCESS_REFUSED, NOT_FOUND, ManagementUnavailable
from qctl.adapters.rabbitmq.management import Management
from qctl.errors import QctlError
from qctl.models import Check
from qctl.urls import redact

NEEDED_BY = {"read": "peek, purge, backup, redrive, move", "write": "redrive, move, restore",
             "configure": None}


def ping(session: Session, management: Management) -> list[Check]:
    started = time.monotonic()
    try:
        connection = session.connection
    except QctlError as exc:
        text = str(exc)
        if "authentication" in text or "access to the vhost" in text:
            return [Check(check="connect", ok=True, detail=session.where),
                    Check(check="authenticate", ok=False, detail=text)]
        return [Check(check="connect", ok=False, detail=text)]
    server: Any = compat.connection_impl(connection).server_properties or {}
    version = server.get("version")
    version = version.decode() if isinstance(version, bytes) else version
    checks = [Check(check="connect", ok=True, detail=session.where),
              Check(check="authenticate", ok=True, detail=f"as {session.options.url.username or 'guest'} on vhost "
                                                           f"{vhost_of(session.options)!r}"),
              Check(check="version", ok=bool(version), detail=f"RabbitMQ {version}" if version else "not told")]
    admin = False
    try:
        tags = management.tags()
        admin = "administrator" in tags
        checks.append(Check(check="management API", ok=True, detail=f"{redact(management.base)}, tags: "
                                                                     f"{', '.join(sorted(tags)) or 'none'}"))
    except ManagementUnavailable as exc:
        checks.append(Check(check="management API", ok=False, detail=str(exc), needed_by="stats listings and globs"))
    else:
        try:
            management.get(f"/api/queues/{management.vhost}", {"columns": "name", "page": 1, "page_size": 1})
            checks.append(Check(check="list", ok=True, detail="the vhost's queues can be listed"))
        except ManagementUnavailable as exc:
            checks.append(Check(check="list", ok=False, detail=str(exc), needed_by="stats"))
    granted = _granted(management, session) if admin else None
    for permission in ("read", "write", "configure"):
        if granted is not None:
            pattern = granted.get(permission, "")
            ok: bool | None = bool(pattern) and not pattern.startswith("^$")
            detail = f"permission pattern {pattern!r}"
        else:
            ok, detail = _probe(session, permission)
        if permission == "configure" and ok is False:
            ok, detail = None, detail + "; qctl does not need it"
        checks.append(Check(check=permission, ok=ok, detail=detail, needed_by=NEEDED_BY[permission]))
    rtt = time.monotonic()
    session.passive_or_missing(f"qctl-ping-{uuid.uuid4().hex}")
    took, total = (time.monotonic() - rtt) * 1000, (rtt - started) * 1000
    checks.append(Check(check="round trip", ok=True, detail=f"{took:.1f} ms (all checks {total:.0f} ms)"))
    return checks


def _granted(management: Management, session: Session) -> dict[str, str] | None:
    user = quote(session.options.url.username or "guest", safe="")
    try:
        row = management.get(f"/api/permissions/{management.vhost}/{user}")
    except ManagementUnavailable:
        return None
    if not isinstance(row, dict):
        return {"read": "", "write": "", "configure": ""}  # no permissions on this vhost at all
    granted = {key: str(row.get(key, "")) for key in ("read", "write", "configure")}
    try:
        topics = management.get(f"/api/topic-permissions/{management.vhost}/{user}")
    except ManagementUnavailable:
        topics = None
    if isinstance(topics, list) and topics:  # topic exchanges restrict routing keys on top of write
        granted["write"] += "; topic permissions: " + ", ".join(
            f"{t.get('exchange')}: write {t.get('write')!r}" for t in topics if isinstance(t, dict))
    return granted


def _probe(session: Session, permission: str) -> tuple[bool | None, str]:
    name = f"qctl-ping-{uuid.uuid4().hex}"
    channel = session.channel()
    try:
        with session.deadline():
            if permission == "read":
                channel.basic_get(name, auto_ack=False)
            elif permission == "write":
                channel.basic_publish("", name, b"", mandatory=False)
                channel.queue_declare(name, passive=True)  # a round trip: a refused publish closes the channel
            else:
                channel.queue_delete(name)
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == ACCESS_REFUSED:
            return False, f"refused for names like {name[:14]}…: {exc.reply_text}"
        if exc.reply_code == NOT_FOUND:
            return True, f"allowed for names like {name[:14]}… (probed on a missing queue)"
        return None, str(exc.reply_text)
    finally:
        if channel.is_open:
            channel.close()
    return True, f"allowed for names like {name[:14]}… (probed on a missing queue)"
