"""Refresh the checked-in completions/ and man/qctl.1: ``python -m qctl.refresh_generated``."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from qctl.cli import app
from qctl.generated import SHELLS, completion_script, man_page


def write_all(root: str = ".") -> None:
    base = Path(root)
    for shell, filename in SHELLS.items():
        (base / "completions" / filename).write_text(completion_script(shell))
    (base / "man" / "qctl.1").write_text(man_page(get_command(app)))


if __name__ == "__main__":
    write_all()
