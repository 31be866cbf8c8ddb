"""Renderers: json/jsonl/csv/plain table/prom, and lossless message encoding."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from qctl import output
from qctl.codec import header_bytes, header_value, message_from_json, message_to_json
from qctl.models import DeadLetter, Message

ROWS = [
    {"backend": "redis", "queue": "orders", "type": "list", "depth": 12, "in_flight": None, "consumers": None,
     "lag": None, "dead_letter_queue": "orders:dlq", "dead_letter_depth": 3},
    {"backend": "kafka", "queue": 'we"ird\\name', "type": "topic", "depth": 0, "in_flight": None, "consumers": 2,
     "lag": 7, "dead_letter_queue": None, "dead_letter_depth": None},
]
COLUMNS = ["queue", "type", "depth", "lag", "dead_letter_queue"]


def test_json_keeps_nulls_and_empty_is_array() -> None:
    out = io.StringIO()
    output.rows(ROWS, "json", COLUMNS, stream=out)
    assert json.loads(out.getvalue())[0]["in_flight"] is None
    empty = io.StringIO()
    output.rows([], "json", COLUMNS, stream=empty)
    assert json.loads(empty.getvalue()) == []


def test_jsonl_one_object_per_line() -> None:
    out = io.StringIO()
    output.rows(ROWS, "jsonl", COLUMNS, stream=out)
    assert [json.loads(line)["queue"] for line in out.getvalue().splitlines()] == ["orders", 'we"ird\\name']


def test_plain_table_has_no_box_drawing_or_colour() -> None:
    out = io.StringIO()
    output.rows(ROWS, "table", COLUMNS, stream=out)
    text = out.getvalue()
    assert text.splitlines()[0].split() == ["QUEUE", "TYPE", "DEPTH", "LAG", "DEAD_LETTER_QUEUE"]
    assert "\x1b[" not in text
    assert not set(text) & set("│─┃━┏┓└┘╭╮")
    assert text.splitlines()[1].split() == ["orders", "list", "12", "-", "orders:dlq"]


def test_csv() -> None:
    out = io.StringIO()
    output.rows(ROWS, "csv", COLUMNS, stream=out)
    assert out.getvalue().splitlines()[:2] == ["queue,type,depth,lag,dead_letter_queue", "orders,list,12,,orders:dlq"]


def test_prometheus_text_parses_with_the_reference_parser() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    out = io.StringIO()
    output.prometheus(ROWS, stream=out)
    samples = {(s.name, s.labels["queue"]): s.value
               for family in text_string_to_metric_families(out.getvalue()) for s in family.samples}
    assert samples[("qctl_queue_depth", "orders")] == 12
    assert samples[("qctl_queue_lag", 'we"ird\\name')] == 7
    assert samples[("qctl_dead_letter_depth", "orders")] == 3
    assert ("qctl_queue_in_flight", "orders") not in samples  # null values are not exported


def test_message_json_round_trip_is_lossless() -> None:
    message = Message(
        queue="q", position="0:5", body=b"\xff\x00binary", partition=0, offset=5, key=b"k\xfe",
        headers={"trace": b"abc", "raw": b"\x80\x81", "n": 3, "nested": {"a": [b"x"]}},
        timestamp=datetime(2026, 11, 21, 8, 0, tzinfo=UTC), redelivered=None, delivery_count=2,
        dead_letter=DeadLetter(reason="rejected", source_queue="orders", count=1,
                               time=datetime(2026, 11, 21, tzinfo=UTC)),
    )
    row = message_to_json(message)
    assert row["body_encoding"] == "base64" and row["key_encoding"] == "base64"
    assert row["timestamp"] == "2026-11-21T08:00:00Z"
    back = message_from_json(json.loads(json.dumps(row)))
    assert back.body == message.body and back.key == message.key
    assert header_bytes(back.headers["raw"]) == b"\x80\x81"
    assert header_bytes(back.headers["trace"]) == b"abc"
    assert back.dead_letter == message.dead_letter
    assert header_value(b"plain") == "plain"
