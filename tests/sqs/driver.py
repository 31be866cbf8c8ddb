"""Test-side access to the real ElasticMQ for the contract suite: seed and read queues with botocore, never qctl.

The message mapping is written out here on its own (not imported from the
adapter), as the adapter's documentation states it: headers are message
attributes, and a body SQS cannot carry as text is base64 with the String
attribute ``x-qctl-body-encoding: base64``.

Reading a queue without changing it is hard on SQS, and the driver picks the
least harmful way per queue:

* a small queue without a RedrivePolicy: receive everything (held invisible),
  then make it visible again -- the messages stay as they were, with their
  MessageIds and dead-letter attributes;
* a queue with a RedrivePolicy (every receive counts toward it) or a big one
  (ElasticMQ makes each early return cost a scan of the queue, so returning
  20,000 messages is quadratic): receive, send copies, delete the originals;
* a FIFO queue: received group by group, deleted, and sent again in the same
  order (SQS hands out no further message of a group while one is in flight,
  so holding them cannot get past ten a group).

"Consumption order" is the order ElasticMQ handed them out; on a standard
queue that is no promise (SQS keeps best-effort order only), which the
capabilities say (``ordered=False``).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

from qctl.models import Message
from qctl.testing.driver import Capabilities, unique_name

MARKER = "x-qctl-body-encoding"
RETURN_AT_MOST = 1000  # beyond this, copy instead of returning (see the module docstring)
_ALLOWED = {0x9, 0xA, 0xD}


def sqs_text(text: str) -> bool:
    return all(ord(c) in _ALLOWED or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000
               for c in text)


def client_for(endpoint: str) -> Any:
    session = botocore.session.get_session()
    return session.create_client("sqs", region_name="us-east-1", endpoint_url=endpoint,
                                 config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 3},
                                               max_pool_connections=16, read_timeout=60))


class SQSDriver:
    capabilities = Capabilities(backend="sqs", queue_type="standard", dlq_suffix="-dlq", carries_headers=True,
                                carries_properties=False, has_read_limits=True, dead_letter_metadata=True,
                                ordered=False, checks_credentials=False)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.url = env["QCTL_TEST_SQS_URL"]
        parts = urlsplit(self.url.replace("sqs+http://", "http://", 1))
        self.endpoint = f"http://{parts.netloc}"
        self.client = client_for(self.endpoint)

    # --- queues ---------------------------------------------------------------------------

    def unique(self, prefix: str = "q") -> str:
        return unique_name(prefix)

    def queue_url(self, name: str) -> str:
        return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])

    def arn(self, name: str) -> str:
        response = self.client.get_queue_attributes(QueueUrl=self.queue_url(name), AttributeNames=["QueueArn"])
        return str(response["Attributes"]["QueueArn"])

    def create(self, name: str, *, dlq: str | None = None, max_receive_count: int = 1,
               attributes: Mapping[str, str] | None = None) -> str:
        """Create ``name`` (FIFO when it ends in .fifo); with ``dlq``, a RedrivePolicy given at creation."""
        wanted = dict(attributes or {})
        if name.endswith(".fifo"):
            wanted["FifoQueue"] = "true"
        if dlq is not None:
            wanted["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": self.arn(dlq),
                                                  "maxReceiveCount": str(max_receive_count)})
        return str(self.client.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"])

    def attributes(self, name: str) -> dict[str, str]:
        response = self.client.get_queue_attributes(QueueUrl=self.queue_url(name), AttributeNames=["All"])
        return dict(response.get("Attributes") or {})

    def depth(self, name: str) -> int:
        return int(self.attributes(name)["ApproximateNumberOfMessages"])

    def counts(self, name: str) -> tuple[int, int]:
        """(visible, in flight)."""
        attributes = self.attributes(name)
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def delete(self, name: str) -> None:
        try:
            self.client.delete_queue(QueueUrl=self.queue_url(name))
        except self.client.exceptions.QueueDoesNotExist:
            pass

    # --- sending -------------------------------------------------------------------------

    def send(self, name: str, messages: Sequence[Message], *, group: str | None = None) -> None:
        """Send in batches of ten, in order (one batch after another)."""
        url = self.queue_url(name)
        fifo = name.endswith(".fifo")
        for start in range(0, len(messages), 10):
            entries = []
            for i, message in enumerate(messages[start:start + 10]):
                entry = entry_for(message)
                if fifo:
                    entry["MessageGroupId"] = str(message.properties.get("MessageGroupId") or group or "g")
                    entry["MessageDeduplicationId"] = uuid.uuid4().hex
                entries.append({"Id": str(i), **entry})
            response = self.client.send_message_batch(QueueUrl=url, Entries=entries)
            assert not response.get("Failed"), response

    def send_fast(self, name: str, bodies: Sequence[bytes]) -> None:
        """Plain text bodies, ten a batch, eight batches at a time (order not kept)."""
        from concurrent.futures import ThreadPoolExecutor

        url = self.queue_url(name)

        def one(start: int) -> None:
            entries = [{"Id": str(i), "MessageBody": body.decode()} for i, body in enumerate(bodies[start:start + 10])]
            assert not self.client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(0, len(bodies), 10)))

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.create(name)
        self.send(name, messages)

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        """``source`` (RedrivePolicy, maxReceiveCount 1) dead-letters every message into ``dlq`` by itself:
        each is received once, and ElasticMQ moves it on the next receive."""
        self.create(dlq)
        self.create(source, dlq=dlq, max_receive_count=1)
        self.send(source, [Message(queue=source, position="", body=body) for body in bodies],
                  group="g" if source.endswith(".fifo") else None)
        url = self.queue_url(source)
        deadline = time.monotonic() + 60 + len(bodies) / 100
        while self.counts(dlq)[0] < len(bodies):
            assert time.monotonic() < deadline, f"{dlq}: {self.counts(dlq)} of {len(bodies)} dead-lettered"
            self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        """A queue whose RedrivePolicy moves a message received ``limit`` times to ``name-limit-dlq``."""
        dlq = name + "-limit-dlq"
        self.create(dlq)
        self.create(name, dlq=dlq, max_receive_count=limit)
        self.send(name, [Message(queue=name, position="", body=body) for body in bodies])
        return self.url

    # --- reading -------------------------------------------------------------------------

    def received(self, name: str) -> list[dict[str, Any]]:
        """Every visible message, received and held (a visibility timeout of ten minutes)."""
        url = self.queue_url(name)
        got: dict[str, dict[str, Any]] = {}
        empty = 0
        while empty < 2:
            batch = self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                                MessageSystemAttributeNames=["All"],
                                                MessageAttributeNames=["All"]).get("Messages") or []
            fresh = [m for m in batch if m["MessageId"] not in got]
            got.update((m["MessageId"], m) for m in fresh)
            empty = 0 if fresh else empty + 1
        return list(got.values())

    def raw_messages(self, name: str) -> list[dict[str, Any]]:
        """Every visible message as ReceiveMessage gives it (attributes and all), then visible again."""
        raws = self.received(name)
        self._batch(self.queue_url(name), "change_message_visibility_batch",
                    [{"ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for m in raws])
        return raws

    def messages(self, name: str) -> list[Message]:
        """Every waiting message, in the order ElasticMQ hands them out, leaving the queue as it was
        (see the module docstring for how)."""
        fifo = name.endswith(".fifo")
        if fifo:
            raws = self.drain_raw(name)
            copies = [to_message(name, i, raw) for i, raw in enumerate(raws)]
            self.send(name, [_with_group(m, raw) for m, raw in zip(copies, raws, strict=True)])
            return copies
        raws = self.received(name)
        found = [to_message(name, i, raw) for i, raw in enumerate(raws)]
        url = self.queue_url(name)
        policy = "RedrivePolicy" in self.attributes(name)
        if policy or len(raws) > RETURN_AT_MOST:
            self.send(name, found)
            self._batch(url, "delete_message_batch", [{"ReceiptHandle": m["ReceiptHandle"]} for m in raws])
            if not policy:
                self.forget_deleted(url)
        else:
            self._batch(url, "change_message_visibility_batch",
                        [{"ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for m in raws])
        return found

    def forget_deleted(self, url: str) -> None:
        """Make ElasticMQ drop the messages deleted from this queue for good.

        ElasticMQ 1.7.1 deletes a message from its id map only; it stays in the queue's priority queue until a
        receive reaches it, and a message move task pops that priority queue without looking, so it moves
        deleted messages too (MoveMessagesAsyncOps.moveFirstMessage).  Lowering one message's visibility
        rebuilds the priority queue from the id map (UpdateVisibilityTimeoutOps), which forgets them.  Only
        for queues without a RedrivePolicy: the receive counts."""
        batch = self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
        for message in batch.get("Messages") or []:
            self.client.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=0)

    def contents(self, name: str) -> list[bytes]:
        return [m.body for m in self.messages(name)]

    def drain_raw(self, name: str) -> list[dict[str, Any]]:
        """Receive and delete every message (destructive), in the order ElasticMQ hands them out."""
        url = self.queue_url(name)
        got: list[dict[str, Any]] = []
        seen: set[str] = set()
        empty = 0
        while empty < 2:
            batch = self.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                                MessageSystemAttributeNames=["All"],
                                                MessageAttributeNames=["All"]).get("Messages") or []
            fresh = [m for m in batch if m["MessageId"] not in seen]
            seen.update(m["MessageId"] for m in fresh)
            got += fresh
            if batch:
                self._batch(url, "delete_message_batch", [{"ReceiptHandle": m["ReceiptHandle"]} for m in batch])
            empty = 0 if fresh else empty + 1
        return got

    def drain(self, name: str) -> list[Message]:
        return [to_message(name, i, raw) for i, raw in enumerate(self.drain_raw(name))]

    def _batch(self, url: str, operation: str, entries: list[dict[str, Any]]) -> None:
        for start in range(0, len(entries), 10):
            chunk = [{"Id": str(i), **entry} for i, entry in enumerate(entries[start:start + 10])]
            response = getattr(self.client, operation)(QueueUrl=url, Entries=chunk)
            assert not response.get("Failed"), response

    def wait_visible(self, name: str, expected: int, timeout: float = 120) -> None:
        """Until ``name`` shows ``expected`` visible messages and none in flight (after a visibility timeout)."""
        deadline = time.monotonic() + timeout
        while self.counts(name) != (expected, 0):
            assert time.monotonic() < deadline, f"{name}: {self.counts(name)}, expected ({expected}, 0)"
            time.sleep(0.5)

    # --- URLs ----------------------------------------------------------------------------

    def bad_password_url(self) -> str:
        return self.url.replace("sqs+http://", "sqs+http://AKIDQCTLTEST:wrong-password@", 1)

    def unreachable_url(self) -> str:
        return "sqs+http://127.0.0.1:1"


def entry_for(message: Message) -> dict[str, Any]:
    """A SendMessageBatch entry (no Id) by the documented mapping."""
    try:
        text: str | None = message.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    attributes: dict[str, Any] = {}
    for name, value in message.headers.items():
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            attributes[name] = {"DataType": "String", "StringValue": json.dumps(value)}
        elif isinstance(value, (int, float)):
            attributes[name] = {"DataType": "Number", "StringValue": str(value)}
        else:
            attributes[name] = {"DataType": "String", "StringValue": str(value)}
    if text is None or not sqs_text(text):
        body = base64.b64encode(message.body).decode("ascii")
        attributes[MARKER] = {"DataType": "String", "StringValue": "base64"}
    else:
        body = text
    entry: dict[str, Any] = {"MessageBody": body}
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def to_message(queue: str, position: int, raw: Mapping[str, Any]) -> Message:
    attributes = dict(raw.get("MessageAttributes") or {})
    marker = attributes.pop(MARKER, None)
    body = raw["Body"].encode("utf-8")
    if marker and marker.get("StringValue") == "base64":
        body = base64.b64decode(raw["Body"])
    headers: dict[str, Any] = {}
    for name, value in attributes.items():
        kind = value["DataType"].split(".")[0]
        if kind == "Binary":
            data = bytes(value["BinaryValue"])
            try:
                headers[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                headers[name] = {"$base64": base64.b64encode(data).decode("ascii")}
        elif kind == "Number":
            number = float(value["StringValue"])
            headers[name] = int(number) if number.is_integer() and math.isfinite(number) else number
        else:
            headers[name] = value["StringValue"]
    system = dict(raw.get("Attributes") or {})
    return Message(queue=queue, position=str(position), body=body, headers=headers,
                   header_pairs=tuple(headers.items()), properties={"MessageId": raw["MessageId"], **system},
                   delivery_count=int(system["ApproximateReceiveCount"]) if "ApproximateReceiveCount" in system
                   else None)


def _with_group(message: Message, raw: Mapping[str, Any]) -> Message:
    group = (raw.get("Attributes") or {}).get("MessageGroupId")
    return Message(queue=message.queue, position=message.position, body=message.body, headers=message.headers,
                   header_pairs=message.header_pairs, properties={"MessageGroupId": group} if group else {})
