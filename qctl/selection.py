"""``--where EXPR``: which messages a command touches, as a JMESPath expression.

The expression sees a message's ``peek`` JSON object, plus ``age`` (seconds
since its timestamp, or null) and ``json`` (the body parsed, when it is JSON).
A message is selected when the result is truthy in JMESPath's sense (not
false, null, an empty string, list or object).  An expression that cannot
apply to a message (``contains(dead_letter.reason, 'x')`` where there is no
dead letter) does not select it; that is counted, not an error.

JMESPath is what AWS CLI users know from ``--query``; ``jmespath`` is imported
only when a command has ``--where``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from qctl.codec import message_to_json
from qctl.errors import UsageError
from qctl.models import Message

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
        if expression is not None:
            self._compiled = compile_expression(expression)

    @property
    def everything(self) -> bool:
        return self._compiled is None

    def __call__(self, message: Message) -> bool:
        if self._compiled is None:
            return True
        from jmespath import exceptions

        try:
            return truthy(self._compiled.search(view(message)))
        except (exceptions.JMESPathError, RecursionError):  # RecursionError: a deeply nested message
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


def view(message: Message) -> dict[str, Any]:
    """What an expression sees: the peek object, ``age`` and ``json``."""
    record = message_to_json(message)
    record["age"] = round(time.time() - message.timestamp.timestamp(), 3) if message.timestamp else None
    record["json"] = None
    if record["body_encoding"] == "utf-8" and record["body"][:1] in JSON_STARTS:
        try:
            record["json"] = json.loads(record["body"])
        except ValueError:
            pass
    return record


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, "", [] and {} are false; 0 is true."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True
