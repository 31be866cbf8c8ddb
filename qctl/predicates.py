"""The common ``--where`` shapes as plain Python closures, with JMESPath's exact semantics.

A redrive evaluates ``--where`` once per message read: hundreds of thousands
of jobs.  jmespath's tree walker costs ~5 us a message for
``contains(dead_letter.reason, 'Timeout')``, a closure ~0.2 us.  What operators
write is nearly always made of field paths, literals, comparisons, ``&&``,
``||``, ``!`` and the string functions ``contains``, ``starts_with`` and
``ends_with``; :func:`compile_tree` turns such a parsed tree into closures
that give the same value as jmespath 1.x's ``TreeInterpreter`` (a function
given the wrong type raises :class:`NotApplicable` where jmespath raises its
type error).  Anything else returns None and jmespath evaluates it.
``tests/core/test_predicates.py`` compares both on many views.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from numbers import Number
from typing import Any

Compiled = Callable[[Any], Any]


class NotApplicable(Exception):
    """A function was given a value of the wrong type (jmespath: JMESPathTypeError)."""


def compile_tree(node: Any) -> Compiled | None:
    """Closures for a jmespath parsed tree, or None when it uses anything outside the subset (or is nested
    too deeply to compile: ``!!!!...x`` that jmespath's parser took; jmespath then evaluates it)."""
    try:
        return _compiled(node)
    except RecursionError:
        return None


def _compiled(node: Any) -> Compiled | None:
    if not isinstance(node, dict):
        return None
    build = _BUILDERS.get(str(node.get("type")))
    return build(node) if build is not None else None


def _children(node: dict[str, Any]) -> list[Compiled] | None:
    compiled = [_compiled(child) for child in node.get("children") or ()]
    return None if any(c is None for c in compiled) else compiled  # type: ignore[return-value]


def _field(node: dict[str, Any]) -> Compiled:
    name = node["value"]

    def field(value: Any) -> Any:
        return value.get(name) if type(value) is dict else None  # jmespath: .get(), or None without one

    return field


def _subexpression(node: dict[str, Any]) -> Compiled | None:
    parts = _children(node)
    if not parts:
        return None

    def subexpression(value: Any) -> Any:
        for part in parts:
            value = part(value)
        return value

    return subexpression


def _literal(node: dict[str, Any]) -> Compiled:
    constant = node["value"]
    return lambda value: constant


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, Number)


def _equals(x: Any, y: Any) -> bool:
    # jmespath: 0 and 1 never equal false and true (Python says they do).
    if _is_number(x) and x in (0, 1):
        if isinstance(y, bool):
            return False
    elif _is_number(y) and y in (0, 1) and isinstance(x, bool):
        return False
    return bool(x == y)


_ORDER = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def _comparator(node: dict[str, Any]) -> Compiled | None:
    sides = _children(node)
    kind = node.get("value")
    if sides is None or len(sides) != 2:
        return None
    left, right = sides
    if kind == "eq":
        return lambda value: _equals(left(value), right(value))
    if kind == "ne":
        return lambda value: not _equals(left(value), right(value))
    order = _ORDER.get(str(kind))
    if order is None:
        return None

    def compare(value: Any) -> Any:
        a, b = left(value), right(value)
        if not ((_is_number(a) or isinstance(a, str)) and (_is_number(b) or isinstance(b, str))):
            return None
        return order(a, b)  # a number against a string raises TypeError, as in jmespath

    return compare


def _is_false(value: Any) -> bool:
    return value == "" or value == [] or value == {} or value is None or value is False


def _junction(node: dict[str, Any], *, both: bool) -> Compiled | None:
    """``a && b`` (``both``: the left when it is false, else the right) or ``a || b`` (the left when it is
    true, else the right), as jmespath evaluates them."""
    sides = _children(node)
    if sides is None or len(sides) != 2:
        return None
    left, right = sides

    def junction(value: Any) -> Any:
        matched = left(value)
        return matched if _is_false(matched) is both else right(value)

    return junction


def _not(node: dict[str, Any]) -> Compiled | None:
    inner = _children(node)
    if inner is None or len(inner) != 1:
        return None
    child = inner[0]

    def negated(value: Any) -> Any:
        result = child(value)
        if _is_number(result) and result == 0:
            return False  # jmespath: !0 is false
        return not result

    return negated


def _strings(name: str, subject: Any, argument: Any) -> None:
    if type(subject) is not str or type(argument) is not str:
        raise NotApplicable(name)


def _contains(subject: Any, search: Any) -> Any:
    if type(subject) not in (str, list):
        raise NotApplicable("contains")
    return search in subject  # a non-string searched for in a string raises TypeError, as in jmespath


def _starts_with(subject: Any, prefix: Any) -> Any:
    _strings("starts_with", subject, prefix)
    return subject.startswith(prefix)


def _ends_with(subject: Any, suffix: Any) -> Any:
    _strings("ends_with", subject, suffix)
    return subject.endswith(suffix)


_FUNCTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "contains": _contains, "starts_with": _starts_with, "ends_with": _ends_with}


def _function(node: dict[str, Any]) -> Compiled | None:
    function = _FUNCTIONS.get(str(node.get("value")))
    arguments = _children(node)
    if function is None or arguments is None or len(arguments) != 2:
        return None  # another function, or the wrong number of arguments: jmespath says which
    first, second = arguments
    return lambda value: function(first(value), second(value))


_BUILDERS: dict[str, Callable[[dict[str, Any]], Compiled | None]] = {
    "field": _field, "subexpression": _subexpression, "literal": _literal, "comparator": _comparator,
    "and_expression": lambda node: _junction(node, both=True),
    "or_expression": lambda node: _junction(node, both=False), "not_expression": _not, "function_expression": _function}
