"""Help that teaches: words for metavars, examples on every command, no typer completion options."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command

from qctl.cli import app
from qctl.examples import EXAMPLES
from qctl.generated import commands
from tests.conftest import QctlRunner

LEAVES = [path for path, _ in commands(get_command(app))]


@pytest.mark.parametrize("path", LEAVES)
def test_help_reads_as_words(qctl: QctlRunner, path: str) -> None:
    run = qctl(*path.split(), "--help")
    assert run.rc == 0, run
    assert not re.search(r"\{[A-Za-z_]+\}|<str>|<int|<float|INTEGER|TEXT|FLOAT|\bPATH\b", run.out), run.out
    assert "--install-completion" not in run.out and "--show-completion" not in run.out


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_every_command_ends_with_two_to_four_real_examples(qctl: QctlRunner, command: str) -> None:
    run = qctl(command, "--help")
    tail = run.out.split("Examples:", 1)[1]
    lines = [line.strip() for line in tail.splitlines() if line.strip().startswith("$ qctl ")]
    assert 2 <= len(lines) <= 4, run.out
    for line in lines:
        words = line.split()
        assert words[1] == "qctl" and words[2] == command
        options = [word.split("=")[0] for word in words if word.startswith("-")]
        for option in options:
            assert option in run.out.split("Examples:")[0], (option, line)  # every option is a real one


def test_the_main_help_lists_every_command_and_no_completion_options(qctl: QctlRunner) -> None:
    run = qctl("--help")
    for command in ("stats", "peek", "purge", "redrive", "move", "backup", "restore", "ping", "completion"):
        assert f"  {command}" in run.out
    assert "--install-completion" not in run.out
