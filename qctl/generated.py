"""Files generated from the live command tree: shell completions and the man page.

``completions/`` and ``man/`` hold the checked-in output; a test regenerates
them and fails on drift (``python -m qctl.generated --write`` refreshes them).
"""

from __future__ import annotations

from qctl.errors import UsageError

SHELLS = {"bash": "qctl.bash", "zsh": "_qctl", "fish": "qctl.fish"}
COMPLETE_VAR = "_QCTL_COMPLETE"


def completion_script(shell: str) -> str:
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {shell!r}", hint="choose bash, zsh or fish")
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name="qctl", complete_var=COMPLETE_VAR, shell=shell)
    return script.rstrip("\n") + "\n"
