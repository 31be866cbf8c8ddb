"""qctl restore on Kafka: the topic's max.message.bytes, found before the first publish, and no lower limit.

A record's size is what the broker measures: the record alone in a v2 batch
(61 bytes of batch header, then the record's varint-framed fields).  For a body
with no key and no headers that is ``len(body) + 72`` from 2**13 to 2**20
bytes (three-byte length varints), ``len(body) + 70`` from 64 to 2**13 - 4.
The broker's default limit is 1,048,588; librdkafka's own producer default
(``message.max.bytes`` 1,000,000) is lower, and used to refuse a record
between the two after the lines before it were published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import QctlRunner
from tests.kafka.driver import KafkaDriver

DEFAULT_LIMIT = 1_048_588  # the broker's message.max.bytes, a topic's max.message.bytes unless it sets one
LARGEST_DEFAULT_BODY = DEFAULT_LIMIT - 72
HEADER = {"qctl_backup": 2, "backend": "kafka", "queue": "backup", "created": "2026-01-01T00:00:00Z"}


def _file(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in [HEADER, *rows]))
    return path


def _row(body: str, **more: Any) -> dict[str, Any]:
    return {"body": body, "body_encoding": "utf-8", **more}


def _lengths(kafka: KafkaDriver, topic: str) -> list[int]:
    return [len(value) for value in kafka.contents(topic)]


def test_a_record_between_librdkafkas_default_and_the_topics_limit_is_published(
        kafka: KafkaDriver, qctl: QctlRunner, tmp_path: Path) -> None:
    topic = kafka.unique("rs-big")
    kafka.create_topic(topic, 1)  # the broker's default max.message.bytes
    small = [_row(f"small {i}") for i in range(6)]

    over = _file(tmp_path / "over.jsonl", [*small[:2], _row("a" * 1_020_000), _row("b" * (LARGEST_DEFAULT_BODY + 1)),
                                           *small[2:]])
    refused = qctl("restore", "-u", kafka.url, str(over), "--to", topic, "-o", "json")

    assert refused.rc == 2, refused
    error = refused.err.strip().splitlines()[-1]
    assert "line 5" in error and "max.message.bytes (1048588)" in error and "nothing was restored" in error, refused
    assert "line 4" not in error  # the 1,020,000-byte record fits
    assert kafka.contents(topic) == []  # found before anything was published

    fits = _file(tmp_path / "fits.jsonl", [*small[:2], _row("a" * 1_020_000), _row("b" * LARGEST_DEFAULT_BODY),
                                           *small[2:]])
    run = qctl("restore", "-u", kafka.url, str(fits), "--to", topic, "-o", "json")

    assert run.rc == 0, run
    assert run.json()["restored"] == 8 and run.json()["resume_skip"] == 8, run
    values = kafka.contents(topic)
    assert [len(v) for v in values] == [7, 7, 1_020_000, LARGEST_DEFAULT_BODY, 7, 7, 7, 7]
    assert values[2] == b"a" * 1_020_000 and values[3] == b"b" * LARGEST_DEFAULT_BODY
    assert values[:2] + values[4:] == [f"small {i}".encode() for i in range(6)]


def test_a_small_max_message_bytes_is_checked_exactly_and_small_records_still_batch_under_it(
        kafka: KafkaDriver, qctl: QctlRunner, tmp_path: Path) -> None:
    topic = kafka.unique("rs-small")
    limit = 4096
    kafka.create_topic(topic, 1, {"max.message.bytes": str(limit)})
    many = [_row(f"{i:04d}" + "s" * 196) for i in range(300)]  # 60 kB: many of librdkafka's batches' worth
    # Exactly at the limit: a body alone (limit - 70 bytes), and with a one-byte key and a one-byte header
    # (2 bytes more for the key than for none, 4 for the header's name and value and their lengths).
    exact = [_row("e" * (limit - 70)), _row("k" * (limit - 75), key="k", header_pairs=[["h", "v"]])]

    for index, one_over in enumerate([_row("e" * (limit - 69)),
                                      _row("k" * (limit - 74), key="k", header_pairs=[["h", "v"]])]):
        rows = [*many[:100], *exact, *many[100:200], one_over, *many[200:]]
        refused = qctl("restore", "-u", kafka.url, str(_file(tmp_path / f"over{index}.jsonl", rows)),
                       "--to", topic, "-o", "json")
        assert refused.rc == 2, refused
        error = refused.err.strip().splitlines()[-1]
        assert "line 204:" in error and f"max.message.bytes ({limit})" in error, refused
        assert "nothing was restored" in error, refused
        assert kafka.contents(topic) == []

    run = qctl("restore", "-u", kafka.url, str(_file(tmp_path / "fits.jsonl", [*many[:100], *exact, *many[100:]])),
               "--to", topic, "-o", "json")

    assert run.rc == 0, run
    assert run.json()["restored"] == 302, run
    records = kafka.records(topic)
    bodies = [record.value for record in records]
    assert bodies[:100] + bodies[102:] == [row["body"].encode() for row in many]  # all of them, in order
    assert bodies[100:102] == [b"e" * (limit - 70), b"k" * (limit - 75)]
    assert (records[101].key, records[101].headers) == (b"k", [("h", b"v")])


def test_the_size_bound_is_never_below_the_exact_size() -> None:
    """Destination.refusal skips the exact size when this bound fits: it must never be the smaller."""
    from qctl.adapters.kafka.destination import batch_bytes, size_bound
    from qctl.codec import header_bytes
    from qctl.models import Message

    cases = [(None, b"", ()), (b"k", b"v" * 300, (("h", "é" * 40), ("n", 10**40), ("f", -1.5e-300))),
             (b"x" * 200, b"y" * 70_000, (("raw", {"$base64": "AP8=" * 99}), ("t", "text"), ("t", "again")))]
    for key, body, pairs in cases:
        message = Message(queue="q", position="0", body=body, key=key, header_pairs=tuple(pairs), headers=dict(pairs))
        exact = batch_bytes(key, body, [(name.encode(), header_bytes(value)) for name, value in pairs])
        assert size_bound(message) >= exact, (key, pairs)
