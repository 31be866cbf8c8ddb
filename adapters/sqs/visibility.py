"""Changing the visibility of received messages in batches of ten, on the adapter's pool.

``make_visible`` hands messages back (VisibilityTimeout 0): what a peek showed
and what a pass left in place.  ``hold`` extends the timeout of messages a
pass still holds.  Per entry, SQS may refuse (the receipt handle is stale:
the timeout ran out and someone else received the message); such messages
are counted, not raised about -- SQS makes them visible by itself.

On ElasticMQ, lowering a message's visibility rebuilds the queue's internal
priority queue (UpdateVisibilityTimeoutOps, "this may be slow"), so handing
back k messages of a queue of n costs about k*n there; AWS has no such cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.names import name_of
from qctl.errors import Interrupted, QctlError

BATCH = 10


def change(conn: Connection, url: str, handles: Sequence[str], timeout: int) -> int:
    """Set the visibility timeout of these messages; returns how many SQS refused."""
    if not handles:
        return 0
    batches = [list(handles[start:start + BATCH]) for start in range(0, len(handles), BATCH)]

    def one(batch: list[str]) -> int:
        entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": timeout}
                   for i, handle in enumerate(batch)]
        response = conn.call("change_message_visibility_batch", f"change visibility in {name_of(url)!r}",
                             QueueUrl=url, Entries=entries)
        return len(response.get("Failed") or [])

    return sum(conn.fan_out(one, batches))


def make_visible(conn: Connection, url: str, handles: Sequence[str]) -> int:
    """Hand messages back at once; returns how many could not be (they come back by themselves)."""
    try:
        return change(conn, url, handles, 0)
    except Interrupted:
        raise  # a second signal stops at once: the timeout brings them back
    except QctlError:  # best effort: the timeout brings them back anyway
        return len(handles)
