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


SHELL_OPERATORS = ("|", "||", "&&", ";", ">", ">>", "<")


@pytest.mark.parametrize("path", LEAVES)
def test_every_command_ends_with_two_to_four_real_examples(qctl: QctlRunner, path: str) -> None:
    """Every leaf command, subcommands (``config show``) included: not only those already in EXAMPLES."""
    run = qctl(*path.split(), "--help")
    assert run.rc == 0, run
    assert "Examples:" in run.out, f"qctl {path} --help has no examples: add them to qctl/examples.py\n{run.out}"
    body, tail = run.out.split("Examples:", 1)
    lines = [line.strip() for line in tail.splitlines() if line.strip().startswith("$ qctl ")]
    assert 2 <= len(lines) <= 4, run.out
    assert tail.rstrip().endswith(lines[-1]), run.out  # the help ends with them
    for line in lines:
        words = line.split()[1:]
        own = words[: next((i for i, word in enumerate(words) if word in SHELL_OPERATORS), len(words))]
        assert own[1: 1 + len(path.split())] == path.split(), (path, line)
        options = [word.split("=")[0] for word in own if word.startswith("-")]
        for option in options:
            assert option in body, (option, line)  # every qctl option is a real one (a pipe's are not qctl's)


def test_examples_name_only_real_commands() -> None:
    assert sorted(EXAMPLES) == sorted(LEAVES)


def test_the_main_help_lists_every_command_and_no_completion_options(qctl: QctlRunner) -> None:
    run = qctl("--help")
    for command in ("stats", "peek", "purge", "redrive", "move", "backup", "restore", "ping", "completion"):
        assert f"  {command}" in run.out
    assert "--install-completion" not in run.out
