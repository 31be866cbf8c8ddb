"""--where does only the work its expression needs: counted in calls, not seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from qctl import codec, selection
from qctl.models import DeadLetter, Message
from qctl.selection import PARTS, Selection, reached, view

MESSAGES = [
    Message(queue="q:failed", position="3", body=b'{"a": [1, 2]}', headers={"x-qctl-redrive-count": 2},
            properties={"job_id": "j1", "rq": {"status": "failed", "data": b"\xff\x00"}, "score": 1.5},
            timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), delivery_count=3,
            dead_letter=DeadLetter(reason="TimeoutError: slow", source_queue="q", count=1,
                                   time=datetime(2026, 1, 2, tzinfo=UTC))),
    Message(queue="plain", position="0", body=b"\x80\x04binary", key=b"k\xfe", partition=2, offset=7,
            redelivered=True),
    Message(queue="text", position="1", body=b"not json"),
]


@pytest.mark.parametrize("message", MESSAGES)
def test_each_part_is_what_the_whole_view_holds(message: Message) -> None:
    whole = view(message)
    assert set(whole) == set(PARTS)
    for name in PARTS:
        if name != "age":  # the clock moves between the two calls
            assert view(message, frozenset({name})) == {name: whole[name]}, name


@pytest.mark.parametrize(("expression", "parts"), [
    ("contains(dead_letter.reason, 'Timeout')", {"dead_letter"}),
    ("headers.tenant == 'acme' && age > `60`", {"headers", "age"}),
    ("properties.rq[?status == 'failed'] | [0]", {"properties"}),
    ("json.a[0]", {"json"}),
    ("{q: queue}.q", {"queue"}),
    ("@", None), ("*", None), ("keys(@)", None), ("length(@) > `3`", None), ("properties.*", None),
])
def test_the_parts_an_expression_reaches(expression: str, parts: set[str] | None) -> None:
    import jmespath

    found = reached(jmespath.compile(expression).parsed)
    assert found == (None if parts is None else frozenset(parts))


def test_a_dead_letter_filter_converts_no_header_or_property(monkeypatch: pytest.MonkeyPatch) -> None:
    """A redrive's usual --where reads dead_letter only: per message no header_value call (the job's whole
    record, a dozen fields) and no message_to_json."""
    calls = {"header_value": 0, "message_to_json": 0}

    def counting(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(selection, "header_value", counting("header_value", codec.header_value))
    monkeypatch.setattr(selection, "message_to_json", counting("message_to_json", codec.message_to_json))
    where = Selection("contains(dead_letter.reason, 'Timeout')")
    assert [where(m) for m in MESSAGES * 100] == [True, False, False] * 100
    assert calls == {"header_value": 0, "message_to_json": 0}
    everything = Selection("length(keys(@)) > `0`")
    assert all(everything(m) for m in MESSAGES)
    assert calls["message_to_json"] == len(MESSAGES)


@pytest.mark.parametrize("expression", [
    "contains(dead_letter.reason, 'Timeout')", "dead_letter.time > '2026'", "dead_letter.count == `1`",
    "dead_letter.source_queue == 'q' && dead_letter.reason", "dead_letter", "dead_letter.*", "dead_letter | time",
    "length(dead_letter) > `2`", "dead_letter.reason.x", "dead_letter.nothing"])
def test_a_narrowed_dead_letter_selects_what_the_whole_view_selects(expression: str) -> None:
    import jmespath

    where = Selection(expression)
    compiled = jmespath.compile(expression)
    for message in MESSAGES:
        try:
            expected = selection.truthy(compiled.search(view(message)))
        except jmespath.exceptions.JMESPathError:
            expected = False
        assert where(message) == expected, message


def test_a_dead_letter_reason_filter_formats_no_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dead_letter.reason`` is all it reads: no ISO text of the failure time per message (a redrive of
    500,000 jobs formatted 500,000 of them); ``dead_letter.time`` still gets it."""
    formatted = {"n": 0}
    real = codec.iso

    def counting(moment: Any) -> Any:
        formatted["n"] += 1
        return real(moment)

    monkeypatch.setattr(selection, "iso", counting)
    assert Selection("contains(dead_letter.reason, 'Timeout')")(MESSAGES[0]) is True
    assert formatted["n"] == 0
    assert Selection("dead_letter.time > '2026'")(MESSAGES[0]) is True
    assert formatted["n"] == 1
