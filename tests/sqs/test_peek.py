"""peek on ElasticMQ: the guard on queues with a RedrivePolicy, VisibilityTimeout 0, holding and handing back."""

from __future__ import annotations

import base64
from typing import Any

from qctl.models import Message
from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver


def receive_counts(sqs: SQSDriver, name: str) -> list[int]:
    """Each message's ApproximateReceiveCount *before* this read (this read's own receive taken off)."""
    return sorted(int(raw["Attributes"]["ApproximateReceiveCount"]) - 1 for raw in sqs.received(name))


def test_peek_is_refused_where_a_receive_counts_and_nothing_is_received(sqs: SQSDriver, q: QctlRunner,
                                                                         names: Any) -> None:
    source, dlq = names("guarded"), names("guarded-dlq")
    sqs.create(dlq)
    sqs.create(source, dlq=dlq, max_receive_count=2)
    sqs.send(source, plain([f"g{i}".encode() for i in range(5)]))
    assert sqs.counts(source) == (5, 0) and sqs.counts(dlq) == (0, 0)
    for args in ([], ["-n", "1"], ["-n", "50"], ["--where", "body == 'g1'"]):
        run = q("peek", source, *args)
        assert run.rc == 2, run
        assert "maxReceiveCount 2" in run.err and "refusing to peek" in run.err and len(run.err.splitlines()) == 1
    # Nothing was received: no message moved to the DLQ, and every receive count is still 0 (two peeks
    # of VisibilityTimeout 0 would have taken each to 2, and the next receive to the DLQ).
    assert sqs.counts(source) == (5, 0) and sqs.counts(dlq) == (0, 0)
    assert receive_counts(sqs, source) == [0] * 5
    # The DLQ has no policy of its own: peeking it is allowed.
    assert q("peek", dlq, "-o", "json").rc == 0


def test_the_hazard_the_guard_prevents_is_real(sqs: SQSDriver, names: Any) -> None:
    """Two receives with VisibilityTimeout 0 -- what a naive peek does -- and the third moves the message."""
    source, dlq = names("hazard"), names("hazard-dlq")
    sqs.create(dlq)
    url = sqs.create(source, dlq=dlq, max_receive_count=2)
    sqs.send(source, plain([b"fragile"]))
    for _ in range(3):
        sqs.client.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert sqs.counts(source) == (0, 0) and sqs.counts(dlq) == (1, 0)


def test_peek_of_up_to_ten_uses_visibility_zero_and_holds_nothing(sqs: SQSDriver, q: QctlRunner,
                                                                   names: Any) -> None:
    name = names("vt0")
    sqs.create(name)
    sqs.send(name, plain([f"m{i}".encode() for i in range(5)]))
    run = q("peek", name, "-o", "jsonl")
    assert run.rc == 0, run
    rows = run.jsonl()
    assert sorted(r["body"] for r in rows) == [f"m{i}" for i in range(5)]
    assert len({r["properties"]["MessageId"] for r in rows}) == 5  # told apart by MessageId: no repeats
    assert all(r["delivery_count"] == 1 and r["redelivered"] is False for r in rows)
    assert "VisibilityTimeout 0" in run.err
    assert sqs.counts(name) == (5, 0)  # visible the whole time: nothing held


def test_peek_of_more_than_ten_holds_them_and_hands_them_back(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    name = names("hold")
    sqs.create(name)
    bodies = [f"h{i:02d}".encode() for i in range(35)]
    sqs.send(name, plain(bodies))
    run = q("peek", name, "-n", "25", "-o", "json")
    assert run.rc == 0, run
    shown = [r["body"].encode() for r in run.json()]
    assert len(shown) == 25 and len(set(shown)) == 25 and set(shown) <= set(bodies)
    assert "made them visible again" in run.err
    assert sqs.counts(name) == (35, 0)  # handed back at once, not after the visibility timeout
    everything = q("peek", name, "-n", "100", "-o", "json")
    assert sorted(r["body"].encode() for r in everything.json()) == bodies
    assert sqs.counts(name) == (35, 0)


def test_peek_shows_attributes_as_headers_and_system_attributes_as_properties(sqs: SQSDriver, q: QctlRunner,
                                                                              names: Any) -> None:
    name = names("attrs", fifo=True)
    url = sqs.create(name)
    sqs.client.send_message(
        QueueUrl=url, MessageBody="hello", MessageGroupId="tenant-7", MessageDeduplicationId="d-1",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"},
                           "tries": {"DataType": "Number", "StringValue": "3"},
                           "price": {"DataType": "Number", "StringValue": "1.50"},
                           "blob": {"DataType": "Binary", "BinaryValue": b"\xff\x00"},
                           "utf8": {"DataType": "Binary", "BinaryValue": b"text"},
                           "doc": {"DataType": "String.json", "StringValue": '{"a": 1}'}})
    row = q("peek", name, "-o", "json").json()[0]
    assert row["body"] == "hello" and row["delivery_count"] == 1 and row["timestamp"].endswith("Z")
    assert row["headers"] == {"kind": "order", "tries": 3, "price": "1.50", "utf8": "text", "doc": '{"a": 1}',
                              "blob": {"$base64": base64.b64encode(b"\xff\x00").decode()}}
    props = row["properties"]
    assert (props["MessageGroupId"], props["MessageDeduplicationId"]) == ("tenant-7", "d-1")
    assert props["SequenceNumber"] and props["MessageId"] and isinstance(props["SentTimestamp"], int)
    assert props["attribute_types"] == {"price": "Number", "utf8": "Binary", "doc": "String.json"}
    assert "ApproximateReceiveCount" not in props  # it is delivery_count, and every receive changes it


def test_binary_bodies_travel_base64_with_a_marker(sqs: SQSDriver, q: QctlRunner, names: Any, tmp_path: Any) -> None:
    source, target = names("bin"), names("bin-to")
    sqs.create(source)
    sqs.create(target)
    sqs.send(source, [Message(queue="", position="", body=b"\x00\x01\xfe binary", headers={"k": "v"})])
    backup = tmp_path / "b.jsonl"
    assert q("purge", source, "--yes", "--backup", str(backup)).rc == 0
    restored = q("restore", str(backup), "--to", target)
    assert restored.rc == 0, restored
    assert "base64-encoded" in restored.err
    raw = sqs.raw_messages(target)[0]
    assert raw["MessageAttributes"]["x-qctl-body-encoding"]["StringValue"] == "base64"
    assert base64.b64decode(raw["Body"]) == b"\x00\x01\xfe binary"
    row = q("peek", target, "-o", "json").json()[0]
    assert (row["body_encoding"], base64.b64decode(row["body"])) == ("base64", b"\x00\x01\xfe binary")
    assert row["headers"] == {"k": "v"}  # the marker is the mapping's, not a header
