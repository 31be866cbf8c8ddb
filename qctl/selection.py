"""``--where EXPR``: which messages a command touches, as a JMESPath expression.

The expression sees a message's ``peek`` JSON object, plus ``age`` (seconds
since its timestamp, or null) and ``json`` (the body parsed, when it is JSON).
A message is selected when the result is truthy in JMESPath's sense (not
false, null, an empty string, list or object).  An expression that cannot
apply to a message (``contains(dead_letter.reason, 'x')`` where there is no
dead letter) does not select it; that is counted, not an error.

JMESPath is what AWS CLI users know from ``--query``; ``jmespath`` is imported
only when a command has ``--where``.

A redrive evaluates the expression on every message it reads (hundreds of
thousands of jobs), so the object is built with only the top-level parts the
expression can reach: its parsed tree names them (``field`` nodes).  An
expression that can see the whole object (``@``, ``*``, a node type this does
not know) gets all of it.  A part holds the same value either way.
"""

from __future__ import annotations

import json
import time
from operator import attrgetter
from typing import Any

from qctl.codec import encode_bytes, header_value, iso, message_to_json
from qctl.errors import UsageError
from qctl.models import Message
from qctl.predicates import Compiled, NotApplicable, compile_tree

DEFAULT_SCAN_LIMIT = 10_000
NUMBER_HINT = "JMESPath writes numbers in backticks: age > `3600`"
JSON_STARTS = frozenset('{["-0123456789tfn')
CONTAINS_HINT = "JMESPath writes it as a function: contains(dead_letter.reason, 'Timeout')"


class Selection:
    """A compiled ``--where``; ``Selection(None)`` selects everything."""

    def __init__(self, expression: str | None) -> None:
        self.expression = expression
        self.not_applicable = 0  # messages the expression could not be applied to
        self._compiled: Any = None
        self._parts: frozenset[str] | None = None  # the view's top-level parts it can reach (None: all)
        self._fast: Compiled | None = None  # the same expression as closures, for the common shapes
        self._builders: list[tuple[str, Any]] = []  # (part, how to build it), when the parts are known
        if expression is not None:
            self._compiled = compile_expression(expression)
            self._parts = reached(self._compiled.parsed)
            self._fast = compile_tree(self._compiled.parsed)
            if self._parts is not None:
                dead_fields = dead_letter_fields(self._compiled.parsed)
                self._builders = [(name, _narrow_dead_letter(dead_fields) if name == "dead_letter" and dead_fields
                                   is not None else PARTS[name]) for name in sorted(self._parts)]

    @property
    def everything(self) -> bool:
        return self._compiled is None

    def __call__(self, message: Message) -> bool:
        if self._compiled is None:
            return True
        from jmespath import exceptions

        try:
            seen = {name: build(message) for name, build in self._builders} if self._parts is not None else view(
                message)
            if self._fast is not None:
                return truthy(self._fast(seen))
            return truthy(self._compiled.search(seen))
        # RecursionError: a deeply nested message; TypeError: what jmespath lets through from Python
        # (contains(body, `1`) is ``1 in str``, body < `1` compares a string with a number).
        except (exceptions.JMESPathError, NotApplicable, RecursionError, TypeError):
            self.not_applicable += 1
            return False


def compile_expression(expression: str) -> Any:
    """The compiled expression; a malformed one is a usage error (exit 2) with JMESPath's message."""
    import jmespath
    from jmespath import exceptions

    if not expression.strip():
        raise UsageError("--where needs an expression", hint="for example --where \"headers.tenant == 'acme'\"")
    try:
        return jmespath.compile(expression)
    except exceptions.ParseError as exc:
        hint = None
        if getattr(exc, "token_type", None) == "number":
            hint = NUMBER_HINT
        elif getattr(exc, "token_value", None) == "contains":
            hint = CONTAINS_HINT
        where = f" at column {exc.lex_position}" if isinstance(exc.lex_position, int) else ""
        token = f", token {exc.token_value!r}" if exc.token_value not in (None, "") else ""
        raise UsageError(f"--where {expression!r}: {exc.msg}{where}{token}", hint=hint) from None
    except exceptions.JMESPathError as exc:
        raise UsageError(f"--where {expression!r}: {' '.join(str(exc).split())}") from None
    except RecursionError:  # jmespath's parser recurses once per nesting level: "((((...", "!!!!..."
        raise UsageError(f"--where: the expression is nested too deeply ({len(expression)} characters)",
                         hint="write it with fewer nested parentheses, '!' or sub-expressions") from None


# Node types whose evaluation never shows an expression the object it is applied to as a whole: besides
# ``field`` (one named part), ``identity`` appears only as the base of a projection, index, slice or flatten,
# which give null on an object.  ``current`` (``@``) and ``value_projection`` (``*``) do show it.
NARROW_NODES = frozenset({
    "field", "subexpression", "function_expression", "literal", "comparator", "and_expression", "or_expression",
    "not_expression", "index_expression", "index", "slice", "filter_projection", "projection", "flatten",
    "identity", "pipe", "multi_select_list", "multi_select_dict", "key_val_pair", "expref"})


def reached(parsed: Any) -> frozenset[str] | None:
    """The top-level view parts a parsed expression can reach: every name its ``field`` nodes look up (at
    any depth: a superset), or None when it may see the whole object."""
    names: set[str] = set()
    stack = [parsed]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue  # a slice's bounds
        kind = node.get("type")
        if kind not in NARROW_NODES:
            return None
        if kind == "field":
            names.add(str(node.get("value")))
        stack.extend(node.get("children") or ())
    return frozenset(names & VIEW_PARTS)


def dead_letter_fields(parsed: Any) -> frozenset[str] | None:
    """The fields of ``dead_letter`` an expression reads when it reads it only as ``dead_letter.NAME`` (a
    superset: every such NAME anywhere), or None when it may see the object whole (``dead_letter`` alone,
    ``dead_letter.*``, a pipe...).  ``contains(dead_letter.reason, 'x')`` needs no ``time`` text: a redrive
    formats none per job then."""
    names: set[str] = set()
    covered: set[int] = set()
    stack, fields = [parsed], []
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        children = node.get("children") or []
        if node.get("type") == "field" and node.get("value") == "dead_letter":
            fields.append(node)
        if (node.get("type") == "subexpression" and len(children) > 1 and _is_field(children[0], "dead_letter")
                and _is_field(children[1], None)):
            covered.add(id(children[0]))
            names.add(str(children[1]["value"]))
        stack.extend(children)
    return frozenset(names) if all(id(node) in covered for node in fields) else None


def _is_field(node: Any, name: str | None) -> bool:
    return isinstance(node, dict) and node.get("type") == "field" and (name is None or node.get("value") == name)


def _narrow_dead_letter(fields: frozenset[str]) -> Any:
    """The ``dead_letter`` part with only ``fields`` (each holding what the whole part holds)."""
    wanted = [name for name in ("reason", "source_queue", "count", "time") if name in fields]
    if len(wanted) == 1 and wanted[0] != "time":  # the usual filter: on the reason, or on the source queue
        (only,) = wanted
        read = attrgetter(only)

        def one(message: Message) -> dict[str, Any] | None:
            dead = message.dead_letter
            return None if dead is None else {only: read(dead)}

        return one

    def part(message: Message) -> dict[str, Any] | None:
        dead = message.dead_letter
        if dead is None:
            return None
        return {name: iso(dead.time) if name == "time" else getattr(dead, name) for name in wanted}

    return part


def _dead_letter(message: Message) -> dict[str, Any] | None:
    dead = message.dead_letter
    return None if dead is None else {"reason": dead.reason, "source_queue": dead.source_queue, "count": dead.count,
                                      "time": iso(dead.time)}


# One top-level part of the view each, as message_to_json (and view, for age and json) write it.
PARTS: dict[str, Any] = {
    "queue": lambda m: m.queue,
    "position": lambda m: m.position,
    "partition": lambda m: m.partition,
    "offset": lambda m: m.offset,
    "key": lambda m: None if m.key is None else encode_bytes(m.key)[0],
    "key_encoding": lambda m: None if m.key is None else encode_bytes(m.key)[1],
    "headers": lambda m: {name: header_value(value) for name, value in m.headers.items()},
    "properties": lambda m: {name: header_value(value) for name, value in m.properties.items()},
    "body": lambda m: encode_bytes(m.body)[0],
    "body_encoding": lambda m: encode_bytes(m.body)[1],
    "timestamp": lambda m: iso(m.timestamp),
    "redelivered": lambda m: m.redelivered,
    "delivery_count": lambda m: m.delivery_count,
    "dead_letter": _dead_letter,
    "age": lambda m: _age(m),
    "json": lambda m: _json(*encode_bytes(m.body)),
}
VIEW_PARTS = frozenset(PARTS)


def view(message: Message, parts: frozenset[str] | None = None) -> dict[str, Any]:
    """What an expression sees: the peek object, ``age`` and ``json``; with ``parts``, only those keys."""
    if parts is not None:
        return {name: PARTS[name](message) for name in parts}
    record = message_to_json(message)
    record["age"] = _age(message)
    record["json"] = _json(record["body"], record["body_encoding"])
    return record


def _age(message: Message) -> float | None:
    return round(time.time() - message.timestamp.timestamp(), 3) if message.timestamp else None


def _json(body: str, encoding: str) -> Any:
    if encoding == "utf-8" and body[:1] in JSON_STARTS:
        try:
            return json.loads(body)
        except ValueError:
            pass
    return None


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, "", [] and {} are false; 0 is true."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True
