"""``peek`` on SQS, which has no browse: receive, show, make visible again.

Every receive raises a message's ApproximateReceiveCount, so on a queue with
a RedrivePolicy a peek could push messages into the dead-letter queue: such a
queue counts reads (:meth:`.adapter.SQSAdapter.read_traits`) and the core's
guard refuses the peek before anything is received.  On other queues:

* Up to 10 messages (the default ``-n``): receives with VisibilityTimeout 0,
  so no consumer ever waits for them.  Such a message is visible again at
  once, so a second receive may bring it back: messages are told apart by
  MessageId, and the peek stops at ``-n``, at the depth read when it started,
  or when a receive brings nothing new.
* More (``-n`` over 10, or a ``--where`` scan): each batch is received with
  a visibility timeout of :data:`HOLD` seconds so the next receive gets the
  next messages, and all of them are made visible again when the peek ends
  (ChangeMessageVisibilityBatch to 0; if qctl is killed first, SQS does it
  after :data:`HOLD` seconds).  Consumers wait for those messages meanwhile.

Order: SQS keeps none on standard queues (ElasticMQ hands them out by the time
they became visible, so a peek moves what it showed behind the rest); a FIFO
queue hands out one batch per message group at a time, so a peek shows at
most ten messages of each group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.messages import to_message
from qctl.adapters.sqs.names import is_fifo, name_of
from qctl.adapters.sqs.visibility import make_visible
from qctl.models import Message

BATCH = 10
HOLD = 60


def receive(conn: Connection, url: str, count: int, visibility: int, wait: int = 0) -> list[dict[str, Any]]:
    response = conn.call("receive_message", f"receive from {name_of(url)!r}", QueueUrl=url,
                         MaxNumberOfMessages=count, VisibilityTimeout=visibility, WaitTimeSeconds=wait,
                         MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
    return list(response.get("Messages") or [])


def peek(conn: Connection, url: str, count: int, notices: list[str]) -> Iterator[Message]:
    queue = name_of(url)
    depth = int(conn.attributes(url, ["ApproximateNumberOfMessages"]).get("ApproximateNumberOfMessages") or 0)
    hold = count > BATCH
    seen: set[str] = set()
    held: dict[str, str] = {}  # MessageId -> its newest receipt handle
    shown = 0
    try:
        while shown < min(count, depth):
            got = receive(conn, url, min(BATCH, count - shown), HOLD if hold else 0)
            if not got and hold:
                got = receive(conn, url, min(BATCH, count - shown), HOLD, conn.long_poll)  # no false empty
            if hold:
                held.update((m["MessageId"], m["ReceiptHandle"]) for m in got)
            new = [m for m in got if m["MessageId"] not in seen]
            if not new:
                break
            for raw in new:
                seen.add(raw["MessageId"])
                shown += 1
                yield to_message(queue, str(shown), raw)
                if shown >= count:
                    break
    finally:
        failed = make_visible(conn, url, list(held.values())) if held else 0
        if shown:
            how = (f"held them for the peek (visibility {HOLD}s) and then made them visible again" if hold
                   else "with VisibilityTimeout 0")
            notices.append(f"SQS has no browse: peek received {shown} message(s) {how}; each receive raised their "
                           f"ApproximateReceiveCount" + ("; a FIFO queue shows at most 10 per message group"
                                                         if hold and is_fifo(queue) else ""))
        if failed:
            notices.append(f"{failed} message(s) could not be made visible at once; SQS makes them visible again "
                           f"within {HOLD}s")
