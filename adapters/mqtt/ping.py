"""``qctl ping`` for MQTT: connect and log in, the broker's version, what this user may subscribe and publish.

Checked without changing anything: subscriptions to ``#`` (read), to ``$SYS/#`` (the broker's
figures, for stats) and a QoS 1 publish of an empty, not retained message to
``qctl/ping/<random>`` (write), whose PUBACK says whether the broker's ACL allowed it (MQTT 5; under
3.1.1 a refused publish is dropped silently, so the answer is unknown).  The subscriptions are
dropped at once and, under MQTT 5, bring no retained messages (retain handling 2).
"""

from __future__ import annotations

import secrets
import time

from paho.mqtt.subscribeoptions import SubscribeOptions

from qctl.adapters.mqtt.connection import Connection
from qctl.errors import QctlError
from qctl.models import Check
from qctl.options import ConnectOptions

AUTH_WORDS = ("user name or password", "not authorized", "not authorised", "bad user", "authentication")
NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10


def ping(options: ConnectOptions, where: str) -> list[Check]:
    started = time.monotonic()
    try:
        conn = Connection(options, where)
    except QctlError as exc:
        text = str(exc)
        if any(word in text.lower() for word in AUTH_WORDS):
            return [Check(check="connect", ok=True, detail=where), Check(check="authenticate", ok=False, detail=text)]
        return [Check(check="connect", ok=False, detail=text)]
    try:
        checks = [Check(check="connect", ok=True, detail=f"{where} (MQTT {'5' if conn.v5 else '3.1.1'})"),
                  Check(check="authenticate", ok=True, detail=f"as {options.url.username or 'anonymous'}")]
        checks.append(_version(conn))
        for check, topic, needed_by in (("read", "#", "peek, backup, purge"), ("list", "$SYS/#", "stats")):
            # Retain handling 2: the broker sends no retained message for this subscription (MQTT 5).
            reason = conn.subscribe([(topic, SubscribeOptions(qos=0, retainHandling=2))])[0]
            conn.unsubscribe([topic])
            conn.sink = None
            ok = reason < 0x80
            checks.append(Check(check=check, ok=ok, detail=f"subscribe {topic!r} " + ("granted" if ok else
                                                                                     f"refused (0x{reason:02x})"),
                                needed_by=needed_by))
        sent = conn.publish(f"qctl/ping/{secrets.token_hex(6)}", b"", qos=1, retain=False)
        conn.wait_sent([sent])
        if not conn.v5:
            checks.append(Check(check="write", ok=None, detail="MQTT 3.1.1 does not say whether a publish was "
                                                               "allowed", needed_by="purge, restore, move"))
        else:
            ok = sent.reason in (0, NO_MATCHING_SUBSCRIBERS)
            checks.append(Check(check="write", ok=ok, detail="publish allowed" if ok else
                                f"publish refused (0x{sent.reason or 0:02x})", needed_by="purge, restore, move"))
        rtt = time.monotonic()
        conn.subscribe([("qctl/ping/none", SubscribeOptions(qos=0))])
        took, total = (time.monotonic() - rtt) * 1000, (rtt - started) * 1000
        checks.append(Check(check="round trip", ok=True, detail=f"{took:.1f} ms (all checks {total:.0f} ms)"))
        return checks
    finally:
        conn.close()


def _version(conn: Connection) -> Check:
    found: list[str] = []

    def sink(message: object) -> None:
        payload = getattr(message, "payload", b"")
        found.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload))

    conn.sink = sink
    reason = conn.subscribe([("$SYS/broker/version", SubscribeOptions(qos=0))])[0]
    if reason < 0x80:
        conn.pump(lambda: bool(found), 1.0)
    conn.unsubscribe(["$SYS/broker/version"])
    conn.sink = None
    return Check(check="version", ok=True if found else None, detail=found[0] if found else
                 "not told ($SYS/broker/version did not answer within a second)")
