"""completions/ and man/ are generated from the live command tree and must not drift.

Refresh them with: .venv/bin/python -m qctl.refresh_generated
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from qctl.cli import app
from qctl.generated import SHELLS, commands, completion_script, man_page

REPO = Path(__file__).resolve().parents[2]
REFRESH = "out of date: run .venv/bin/python -m qctl.refresh_generated and commit the result"
ROOT = get_command(app)


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_files_match_the_app(shell: str) -> None:
    assert (REPO / "completions" / SHELLS[shell]).read_text() == completion_script(shell), REFRESH


def test_man_page_matches_the_app() -> None:
    assert (REPO / "man" / "qctl.1").read_text() == man_page(ROOT), REFRESH


def test_man_page_documents_every_command_option_and_exit_code() -> None:
    from qctl.errors import ExitCode

    page = man_page(ROOT)
    for path, command in commands(ROOT):
        assert f'.SS "qctl {path}"' in page
        for param in getattr(command, "params", []):
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt.replace("-", "\\-") in page, (path, opt)
    for code in ExitCode:
        assert f".B {int(code)}\n" in page
    for section in ("URLS", "CONFIGURATION", "EXIT STATUS", "EXAMPLES", "ENVIRONMENT"):
        assert f".SH {section}" in page


def test_completion_command_prints_the_shipped_script() -> None:
    proc = subprocess.run([sys.executable, "-m", "qctl", "completion", "zsh"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == (REPO / "completions" / "_qctl").read_text()


def _complete_bash(words: str) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
           "_QCTL_COMPLETE": "complete_bash"}
    proc = subprocess.run([sys.executable, "-m", "qctl"], env=env, capture_output=True, text=True)
    return proc.stdout.split()


def test_bash_completion_completes_commands_and_options() -> None:
    assert "stats" in _complete_bash("qctl st")
    assert {"--dry-run", "--debug"} <= set(_complete_bash("qctl purge --d"))
    assert "--max-redrives" in _complete_bash("qctl redrive --max")


def test_bad_shell_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "qctl", "completion", "tcsh"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("qctl: error: unknown shell")
