"""``qctl ping`` for SQS: the endpoint, credentials, listing, round trip.

Credentials are resolved by the standard AWS chain first (none for real AWS is a failed
authenticate, before any request).  ListQueues proves the endpoint and the credentials together;
an AccessDenied there is a failed ``list``.  SQS permissions are IAM policies, per queue and per
action, which only trying (or IAM's policy simulator, with rights of its own) can tell: ping does not
guess them.
"""

from __future__ import annotations

import time

from qctl.adapters.sqs.client import Connection
from qctl.errors import BrokerUnavailable, QctlError
from qctl.models import Check

ACCESS = ("AccessDenied", "AccessDeniedException", "AuthorizationError")
CREDENTIALS = ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
               "ExpiredToken", "credentials")


def ping(conn: Connection) -> list[Check]:
    started = time.monotonic()
    try:
        conn.client  # noqa: B018 - resolves the region and credentials (a missing one fails here)
    except QctlError as exc:
        return [Check(check="connect", ok=None, detail=conn.where), Check(check="authenticate", ok=False,
                                                                          detail=str(exc))]
    try:
        conn.call("list_queues", "list queues", MaxResults=1)
    except BrokerUnavailable as exc:
        text = str(exc)
        if any(code in text for code in CREDENTIALS):
            return [Check(check="connect", ok=True, detail=conn.where),
                    Check(check="authenticate", ok=False, detail=text)]
        if any(code in text for code in ACCESS):
            return [Check(check="connect", ok=True, detail=conn.where),
                    Check(check="authenticate", ok=True, detail="credentials accepted"),
                    Check(check="list", ok=False, detail=text, needed_by="stats")]
        return [Check(check="connect", ok=False, detail=text)]
    signed = "unsigned requests (no credentials found; the endpoint accepts them)" if not conn.aws and \
        _unsigned(conn) else "credentials accepted"
    checks = [Check(check="connect", ok=True, detail=conn.where),
              Check(check="authenticate", ok=True, detail=signed),
              Check(check="version", ok=None, detail="SQS has no version to tell"),
              Check(check="list", ok=True, detail="ListQueues allowed"),
              Check(check="permissions", ok=None, detail="IAM decides per queue and action; qctl needs "
                                                         "sqs:ReceiveMessage, DeleteMessage, SendMessage, "
                                                         "GetQueueAttributes, ListDeadLetterSourceQueues, PurgeQueue "
                                                         "and StartMessageMoveTask")]
    rtt = time.monotonic()
    conn.call("list_queues", "list queues", MaxResults=1)
    took, total = (time.monotonic() - rtt) * 1000, (rtt - started) * 1000
    checks.append(Check(check="round trip", ok=True, detail=f"{took:.1f} ms (all checks {total:.0f} ms)"))
    return checks


def _unsigned(conn: Connection) -> bool:
    from botocore import UNSIGNED  # type: ignore[import-untyped]

    return getattr(conn.client.meta.config, "signature_version", None) is UNSIGNED
