"""The shared shortcuts a pass runs a million times build exactly what the plain way builds: messages through
their slots (``qctl.models.new_message``), JSON encoded by one prepared encoder (``qctl.codec.json_encoder``),
and many JSON texts parsed in one call (``qctl.codec.parse_each``, ``loads_all`` of the Redis layouts)."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from qctl import codec, models
from qctl.adapters.redis.layouts.base import loads, loads_all
from qctl.models import DeadLetter, Message, new_dead_letter, new_message, with_pairs


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "none", "bool"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice(["a", "é", "\x01", "\u2028", '"', "\\", "😀", " "]) for _ in range(rng.randrange(6)))
    if kind == "int":
        return rng.choice([0, -1, 2**70, rng.randrange(-1000, 1000)])
    if kind == "float":
        return rng.choice([0.0, -0.5, 1e300, 1796673036.5635006, rng.random()])
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_random_value(rng, 3) if rng.random() < 0.2 else str(i): _random_value(rng, depth + 1)
            for i in range(rng.randrange(4))}


def test_new_message_is_the_constructors_message() -> None:
    stamp = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=UTC)
    dead = DeadLetter(reason="boom", source_queue="orders", count=3, time=stamp)
    values = {"queue": "q", "position": "7", "body": b"\xff body", "partition": 2, "offset": 9, "key": b"k",
              "headers": {"a": "1"}, "header_pairs": (("a", "0"), ("a", "1")), "properties": {"score": 1.5},
              "timestamp": stamp, "redelivered": True, "delivery_count": 4, "dead_letter": dead}
    assert tuple(values) == tuple(f.name for f in dataclasses.fields(Message))  # new_message's argument order
    built = new_message(*values.values())
    assert built == Message(**values) and type(built) is Message
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.queue = "other"  # type: ignore[misc]
    assert new_dead_letter("boom", "orders", 3, stamp) == dead
    message = Message(queue="q", position="1", body=b"b", headers={"x": 1}, properties={"p": 2}, delivery_count=1)
    pairs = [("x", 1), ("y", 2), ("x", 3)]
    assert with_pairs(message, pairs) == dataclasses.replace(message, headers=dict(pairs), header_pairs=tuple(pairs))


def test_slot_setters_are_refused_for_a_class_of_another_shape() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    assert models._slot_setters(Checked, ("a",)) is None
    assert models._slot_setters(Unslotted, ("a",)) is None
    assert models._slot_setters(DeadLetter, ("reason", "source_queue", "time", "count")) is None  # out of order
    assert models._slot_setters(DeadLetter, ("reason", "source_queue", "count", "time")) is not None


def test_json_encoder_writes_what_json_dumps_writes() -> None:
    rng = random.Random(7)
    plain = codec.json_encoder()
    ruby = codec.json_encoder(item_separator=",", key_separator=":", allow_nan=False)
    for _ in range(2000):
        value = _random_value(rng)
        assert plain(value) == json.dumps(value, ensure_ascii=False)
        assert ruby(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert plain({"n": float("nan")}) == '{"n": NaN}'
    for bad in ({"n": float("inf")}, {"o": object()}, {(1, 2): 3}):
        with pytest.raises((ValueError, TypeError)) as ours:
            ruby(bad)
        with pytest.raises((ValueError, TypeError)) as theirs:
            json.dumps(bad, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_json_encoder_builds_no_encoder_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    encode = codec.json_encoder()
    built = 0
    real = json.encoder.c_make_encoder

    def counting(*args: Any) -> Any:
        nonlocal built
        built += 1
        return real(*args)

    monkeypatch.setattr(json.encoder, "c_make_encoder", counting)
    for n in range(100):
        encode({"n": n})
    assert built == 0


def test_parse_each_is_each_parse() -> None:
    rng = random.Random(11)
    texts = [json.dumps(_random_value(rng)) for _ in range(500)]
    assert codec.parse_each(texts) == [json.loads(text) for text in texts]
    assert codec.parse_each([]) == []


@pytest.mark.parametrize("texts", [
    ['{"a": 1}, {"b": 2}', '{"c": 3}'],  # one text, two values
    ['[1', '2]'],  # half a value that the next text completes
    ['{"k":[{}', '{}]}', '{},{}'],  # as many values as texts, but not one each
    ['{"a": 1}', ''],  # an empty text
    ['1', 'nope'],  # not JSON
    ['[' * 100_000],  # too deep for the parser
])
def test_parse_each_refuses_texts_that_are_not_one_value_each(texts: list[str]) -> None:
    assert codec.parse_each(texts) is None


def test_loads_all_falls_back_to_one_by_one() -> None:
    """Not UTF-8, not JSON, a UTF-16 document: each member as :func:`loads` would read it alone."""
    raws = [b'{"a": 1}', b"\xff\xfe{", "[1]".encode("utf-16"), b"[1", b"2]", b'"\xc3\xa9"']
    assert loads_all(raws) == [loads(raw) for raw in raws] == [{"a": 1}, None, [1], None, None, "é"]
    assert loads_all([b'{"a": 1}', b"[2]"]) == [{"a": 1}, [2]]
