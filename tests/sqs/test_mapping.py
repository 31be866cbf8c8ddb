"""What SQS can carry: attribute types kept exactly, limits refused before sending, FIFO ids."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from qctl.models import Message
from qctl.redrive import REDRIVE_COUNT_HEADER
from qctl.testing.driver import plain
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver
from tests.sqs.shim import shim

LIMIT_256K = 262_144  # an AWS queue's MaximumMessageSize before 2025, and a common setting since


def lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_attribute_types_survive_sqs_to_sqs_exactly(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    dlq, target = names("types-dlq"), names("types")
    url = sqs.create(dlq)
    sqs.create(target)
    attributes = {"price": {"DataType": "Number", "StringValue": "1.50"},
                  "n": {"DataType": "Number", "StringValue": "7"},
                  "utf8": {"DataType": "Binary", "BinaryValue": b"text"},
                  "raw": {"DataType": "Binary", "BinaryValue": b"\xff\x00"},
                  "doc": {"DataType": "String.json", "StringValue": '{"a": 1}'},
                  "plain": {"DataType": "String", "StringValue": "v"}}
    sqs.client.send_message(QueueUrl=url, MessageBody="typed", MessageAttributes=attributes,
                            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String",
                                                                        "StringValue": "Root=1-5e1b4151-abc"}})
    run = q("redrive", dlq, "--to", target, "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 1, run
    raw = sqs.raw_messages(target)[0]
    got = raw["MessageAttributes"]
    assert {name: got[name] for name in attributes} == attributes
    assert got[REDRIVE_COUNT_HEADER] == {"DataType": "Number", "StringValue": "1"}
    assert raw["Attributes"]["AWSTraceHeader"] == "Root=1-5e1b4151-abc"


def test_what_sqs_cannot_take_is_refused_with_its_line_before_anything_is_sent(sqs: SQSDriver, q: QctlRunner,
                                                                                names: Any, tmp_path: Path) -> None:
    name = names("limits")
    sqs.create(name)
    ok = {"body": "fine"}
    cases = {
        "eleven": ({"body": "x", "headers": {f"h{i}": "v" for i in range(11)}}, "at most 10"),
        "ten-and-binary": ({"body": "AP8=", "body_encoding": "base64", "headers": {f"h{i}": "v" for i in range(10)}},
                           "marks the body as base64"),
        "empty": ({"body": "x", "headers": {"h": ""}}, "empty"),
        "name": ({"body": "x", "headers": {"has space": "v"}}, "attribute name"),
        "reserved": ({"body": "x", "headers": {"AWS.trace": "v"}}, "attribute name"),
        "big": ({"body": "x" * 1_048_577}, "MaximumMessageSize"),
    }
    for label, (row, reason) in cases.items():
        file = lines(tmp_path / f"{label}.jsonl", [ok, ok, row, ok])
        run = q("restore", str(file), "--to", name)
        assert run.rc == 2, (label, run)
        assert "line 3" in run.err and reason in run.err, (label, run)
    assert sqs.counts(name) == (0, 0)  # nothing was published by any of them


def test_a_queue_limited_to_256_kb_refuses_a_body_one_byte_over_and_takes_one_exactly_at_it(
        sqs: SQSDriver, qctl: QctlRunner, names: Any, tmp_path: Path) -> None:
    """MaximumMessageSize 262,144 counts the body as sent (UTF-8 text, or base64 with its marker attribute)
    plus each attribute's name, DataType and value.  ElasticMQ keeps no per-queue size (see tests/sqs/shim.py):
    the shim answers GetQueueAttributes as AWS would for such a queue, everything else is ElasticMQ's."""
    name = names("limit-256k")
    sqs.create(name, attributes={"MaximumMessageSize": str(LIMIT_256K)})  # what AWS keeps (ElasticMQ forgets)
    ok = {"body": "fine"}
    tenant = {"tenant": "acme"}  # an attribute of 6 + 6 ("String") + 4 bytes
    binary = b"\xff" * 196_584  # base64: 262,112 bytes, plus the marker x-qctl-body-encoding=base64 (20 + 6 + 6)
    exact: list[dict[str, Any]] = [
        {"body": "x" * LIMIT_256K},
        {"body": "x" * (LIMIT_256K - 16), "headers": tenant},
        {"body": base64.b64encode(binary).decode(), "body_encoding": "base64"},
        {"body": "\u00e9" * (LIMIT_256K // 2)},  # two UTF-8 bytes each
    ]
    over: dict[str, tuple[dict[str, Any], str]] = {
        "plain": ({"body": "x" * (LIMIT_256K + 1)}, "262,145 bytes"),
        "attribute": ({"body": "x" * (LIMIT_256K - 15), "headers": tenant}, "262,145 bytes"),
        "base64": ({"body": base64.b64encode(binary + b"\xff").decode(), "body_encoding": "base64"}, "262,148 bytes"),
        "utf-8": ({"body": "\u00e9" * (LIMIT_256K // 2) + "x"}, "262,145 bytes"),
    }
    with shim(sqs.endpoint, {name: LIMIT_256K}) as front:
        for label, (row, size) in over.items():
            file = lines(tmp_path / f"{label}.jsonl", [ok, ok, row, *exact, ok])
            run = qctl("restore", "-u", front.url, str(file), "--to", name)
            assert run.rc == 2, (label, run)
            error = run.err.strip().splitlines()[-1]
            assert "line 3:" in error and size in error and "MaximumMessageSize of 262,144" in error, (label, run)
            assert "nothing was restored" in error, (label, run)
        assert "GetQueueAttributes" in front.operations  # the limit was read from the queue
        assert front.sent() == [] and sqs.counts(name) == (0, 0)  # refused before anything was sent

        run = qctl("restore", "-u", front.url, str(lines(tmp_path / "exact.jsonl", [ok, *exact, ok])),
                   "--to", name, "-o", "json")
        assert run.rc == 0 and run.json()["restored"] == 6, run
        assert front.sent()
    received = sorted(((m.body, m.headers) for m in sqs.drain(name)), key=lambda pair: pair[0])
    expected = [(b"fine", {}), (b"fine", {}), (b"x" * LIMIT_256K, {}), (b"x" * (LIMIT_256K - 16), tenant),
                (binary, {}), (("\u00e9" * (LIMIT_256K // 2)).encode(), {})]
    assert received == sorted(expected, key=lambda pair: pair[0])  # each once, byte for byte, with its attribute


def test_a_message_the_redrive_count_would_push_over_ten_attributes_stays(sqs: SQSDriver, q: QctlRunner,
                                                                          names: Any) -> None:
    source, dlq = names("full"), names("full-dlq")
    sqs.create(source)
    sqs.create(dlq)
    sqs.send(dlq, [Message(queue="", position="", body=b"ten", headers={f"h{i}": "v" for i in range(10)}),
                   Message(queue="", position="", body=b"few", headers={"h": "v"})])
    run = q("redrive", dlq, "--to", source, "-o", "json")
    assert run.rc == 6, run  # partial: one left in place, nothing lost
    assert run.json()["moved"] == 1 and "at most 10" in run.err
    assert [m.body for m in sqs.drain(source)] == [b"few"]
    assert [m.body for m in sqs.drain(dlq)] == [b"ten"]


def test_fifo_restore_keeps_groups_and_deduplicates_on_the_source_message_id(sqs: SQSDriver, q: QctlRunner,
                                                                            names: Any, tmp_path: Path) -> None:
    """Group ids come from the file; the deduplication id is each message's SQS MessageId, so a second restore
    of the same file within SQS's 5-minute window adds nothing (and a rerun after a crash adds no copies)."""
    source, target = names("fsrc", fifo=True), names("fdst", fifo=True)
    url = sqs.create(source)
    sqs.create(target)
    for i in range(12):
        sqs.client.send_message(QueueUrl=url, MessageBody=f"m{i:02d}", MessageGroupId=f"g{i % 3}",
                                MessageDeduplicationId=f"d{i}")
    backup = tmp_path / "fifo.jsonl"
    assert q("purge", source, "--yes", "--backup", str(backup)).rc == 0
    for _ in range(2):
        run = q("restore", str(backup), "--to", target, "-o", "json")
        assert run.rc == 0 and run.json()["restored"] == 12, run
    restored = sqs.drain(target)
    assert len(restored) == 12
    groups: dict[str, list[bytes]] = {}
    for message in restored:
        groups.setdefault(message.properties["MessageGroupId"], []).append(message.body)
    assert groups == {f"g{g}": [f"m{i:02d}".encode() for i in range(g, 12, 3)] for g in range(3)}


def test_bodies_from_other_backends_get_a_group_and_a_fresh_id(sqs: SQSDriver, q: QctlRunner, names: Any,
                                                              tmp_path: Path) -> None:
    """A line with no SQS properties (another backend's message) goes to FIFO as group "qctl"; a Kafka key
    would be its group.  Two identical bodies both arrive (no content deduplication)."""
    target = names("foreign", fifo=True)
    sqs.create(target)
    file = lines(tmp_path / "foreign.jsonl", [{"body": "same"}, {"body": "same"},
                                              {"body": "keyed", "key": "customer-9"}])
    assert q("restore", str(file), "--to", target).rc == 0
    got = [(m.body, m.properties["MessageGroupId"]) for m in sqs.drain(target)]
    assert sorted(got) == [(b"keyed", "customer-9"), (b"same", "qctl"), (b"same", "qctl")]


def test_properties_no_sqs_message_has_are_dropped_with_a_notice(sqs: SQSDriver, q: QctlRunner, names: Any,
                                                                 tmp_path: Path) -> None:
    target = names("props")
    sqs.create(target)
    file = lines(tmp_path / "amqp.jsonl", [{"body": "b", "properties": {"content_type": "text/plain",
                                                                          "message_id": "m-1"}}])
    run = q("restore", str(file), "--to", target)
    assert run.rc == 0 and "carried properties" in run.err and "content_type" in run.err, run
    assert [m.body for m in sqs.drain(target)] == [b"b"]


def test_purge_where_deletes_only_the_selected_and_hands_the_rest_back(sqs: SQSDriver, q: QctlRunner,
                                                                       names: Any) -> None:
    name = names("pwhere")
    sqs.create(name)
    sqs.send(name, plain([f"p{i}".encode() for i in range(30)]))
    run = q("purge", name, "--yes", "--where", "body == 'p7' || body == 'p21'", "-o", "json")
    assert run.rc == 0 and (run.json()["purged"], run.json()["kept"]) == (2, 28), run
    assert sqs.counts(name) == (28, 0)  # the kept ones visible again at once, none in flight
    assert sorted(sqs.contents(name)) == sorted(f"p{i}".encode() for i in range(30) if i not in (7, 21))
