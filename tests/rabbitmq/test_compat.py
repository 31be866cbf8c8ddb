"""pika's private attributes are touched in one module only, and pika is pinned to the minor that was tested."""

from __future__ import annotations

import ast
from pathlib import Path

import pika

ADAPTER = Path(__file__).resolve().parents[2] / "adapters" / "rabbitmq"


def private_uses(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``: a reach into another object's internals."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_only_compat_touches_pika_internals() -> None:
    offenders = [use for path in sorted(ADAPTER.glob("*.py")) if path.name != "compat.py" for use in private_uses(path)]
    assert offenders == [], "move these into adapters/rabbitmq/compat.py: " + ", ".join(offenders)
    assert private_uses(ADAPTER / "compat.py"), "compat.py is where they live"


def test_pika_is_the_pinned_minor() -> None:
    assert pika.__version__.startswith("1.4."), pika.__version__
