"""The closures for common --where shapes give exactly what jmespath gives, and jmespath then does no work."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath import exceptions

from qctl.models import DeadLetter, Message
from qctl.predicates import NotApplicable, compile_tree
from qctl.selection import Selection

FAST = [
    "contains(dead_letter.reason, 'Timeout')",
    "contains(headers.tags, 'x')",
    "starts_with(queue, 'orders') && !ends_with(queue, ':failed')",
    "headers.tenant == 'acme' || headers.tenant == `1`",
    "headers.n != `0` && headers.n != `false`",
    "headers.n > `3`", "headers.n <= `1.5`", "headers.tenant < 'b'", "headers.n >= headers.m",
    "!headers.n", "!(headers.n == `true`)", "headers.a.b.c", "dead_letter", "`true`", "'text'",
    "contains(headers.n, headers.m)", "headers.flag == `true` && contains(json.a, `1`)",
    "headers.n == headers.m", "ends_with(headers.tenant, headers.m)", "headers.n && headers.m",
    "headers.n || headers.m",
]
# Every pair of these, through every binary shape: the corners (0 and false, 1.0 and true, [] and {}) that
# random views rarely hit together.
SCALARS = [None, True, False, 0, 1, 2, 0.0, 1.0, -0.0, 1.5, "", "a", "b", "ab", [], ["a"], [1], {}, {"a": 1}]
PAIRS = ["headers.n == headers.m", "headers.n != headers.m", "headers.n < headers.m", "headers.n >= headers.m",
         "headers.n && headers.m", "headers.n || headers.m", "!headers.n", "contains(headers.n, headers.m)",
         "starts_with(headers.n, headers.m)", "ends_with(headers.n, headers.m)"]
SLOW = ["length(body) > `3`", "headers.*", "@", "properties.rq[?status == 'failed'] | [0]", "json.a[0]",
        "contains(body)", "to_string(headers.n)"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 1.5, -0.0])
    | st.sampled_from(["", "a", "acme", "b", "orders:1", "TimeoutError: x", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["a", "b", "c", "n", "m", "tenant", "tags", "flag"]), inner, max_size=4),
    max_leaves=8)
views = st.fixed_dictionaries({
    "queue": json_values, "headers": json_values, "dead_letter": json_values, "json": json_values,
    "body": json_values})


def outcome(run: Any) -> tuple[str, Any]:
    """What evaluating gave: a value, or that it did not apply (either engine's way of saying so)."""
    try:
        return "value", run()
    except (exceptions.JMESPathError, NotApplicable, TypeError):
        return "not applicable", None


@pytest.mark.parametrize("expression", FAST)
@settings(max_examples=300, deadline=None)
@given(data=views)
def test_the_closures_give_what_jmespath_gives(expression: str, data: dict[str, Any]) -> None:
    parsed = jmespath.compile(expression)
    fast = compile_tree(parsed.parsed)
    assert fast is not None
    expected, got = outcome(lambda: parsed.search(data)), outcome(lambda: fast(data))
    assert got == expected
    if expected[0] == "value":
        assert type(got[1]) is type(expected[1])


@pytest.mark.parametrize("expression", PAIRS)
def test_every_pair_of_corner_values(expression: str) -> None:
    parsed = jmespath.compile(expression)
    fast = compile_tree(parsed.parsed)
    assert fast is not None
    for n in SCALARS:
        for m in SCALARS:
            data = {"headers": {"n": n, "m": m}}
            expected = outcome(lambda data=data: parsed.search(data))  # type: ignore[misc]
            got = outcome(lambda data=data: fast(data))  # type: ignore[misc]
            assert got == expected and type(got[1]) is type(expected[1]), (n, m)


@pytest.mark.parametrize("expression", SLOW)
def test_other_shapes_are_left_to_jmespath(expression: str) -> None:
    assert compile_tree(jmespath.compile(expression).parsed) is None


def test_a_dead_letter_filter_walks_no_jmespath_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    from jmespath import visitor

    visits = {"n": 0}
    real = visitor.TreeInterpreter.visit

    def counting(self: Any, node: Any, *args: Any) -> Any:
        visits["n"] += 1
        return real(self, node, *args)

    monkeypatch.setattr(visitor.TreeInterpreter, "visit", counting)
    where = Selection("contains(dead_letter.reason, 'Timeout')")
    timeout = Message(queue="q", position="0", body=b"", dead_letter=DeadLetter(
        reason="TimeoutError: slow", source_queue="q", count=None, time=None))
    plain = Message(queue="q", position="1", body=b"")
    assert [where(timeout), where(plain)] == [True, False]
    assert where.not_applicable == 1  # contains(null, ...): jmespath's type error, counted
    assert visits["n"] == 0
    slow = Selection("length(dead_letter.reason) > `3`")
    assert slow(timeout) is True and visits["n"] > 0  # the control: this one does walk the tree


def test_a_type_error_jmespath_lets_through_is_not_applicable() -> None:
    """jmespath passes Python's TypeError through (``1 in 'text'``); it is a message the expression does not
    apply to, never a traceback."""
    for expression in ("contains(body, `1`)", "length(body) > `1` && contains(body, `1`)"):
        where = Selection(expression)
        assert where(Message(queue="q", position="0", body=b"text")) is False
        assert where.not_applicable == 1


def test_an_expression_nested_too_deeply_to_compile_is_left_to_jmespath() -> None:
    """jmespath's parser takes a few hundred nested '!'; compiling them into closures would overflow the
    stack: then jmespath evaluates it (and a too-deep evaluation is a message not applied to, not a crash)."""
    import sys

    depth = sys.getrecursionlimit() // 3 + 10
    expression = "!" * depth + "queue"
    try:
        parsed = jmespath.compile(expression).parsed
    except RecursionError:
        pytest.skip("this jmespath's parser cannot take it either")
    assert compile_tree(parsed) is None
    where = Selection(expression)
    where(Message(queue="q", position="0", body=b""))  # selects or not; never raises
