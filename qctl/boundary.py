"""The one error boundary: every failure becomes one line and a contract exit code.

``qctl: error: WHAT`` on stderr, the code from the exception class, and a
traceback only with ``--debug`` (or ``QCTL_DEBUG=1``), passwords masked even there.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from qctl import output
from qctl.errors import ExitCode, QctlError

F = TypeVar("F", bound=Callable[..., Any])
COMPLETE_VAR = "_QCTL_COMPLETE"
_debug = False


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def debug_enabled() -> bool:
    return _debug or os.environ.get("QCTL_DEBUG", "") not in ("", "0")


def errors_to_exit_codes(fn: F) -> F:
    """Wrap a command so that errors exit with their contract code (typer reads the signature)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        set_debug(bool(kwargs.get("debug")))
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except QctlError as exc:
            _maybe_traceback()
            output.error(str(exc))
            raise typer.Exit(int(exc.code())) from None
        except KeyboardInterrupt:
            output.error("interrupted; nothing was lost")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(int(ExitCode.OK)) from None
        except Exception as exc:  # a bug: say so in one line, the traceback on request
            _maybe_traceback()
            hint = "" if debug_enabled() else " (hint: rerun with --debug for a traceback, and report it as a bug)"
            output.error(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}{hint}")
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper  # type: ignore[return-value]


def _maybe_traceback() -> None:
    if debug_enabled():
        from qctl.urls import redact  # here, not at start-up: qctl --version never needs it

        sys.stderr.write(redact(traceback.format_exc()))


def _silence_stdout() -> None:
    # The reader went away (`qctl peek | head`): stop writing, exit quietly.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def plain_metavars(root: Any) -> Any:
    """Show a required argument as ``QUEUE``, not typer's ``{QUEUE}`` (usage lines read as words)."""
    for command in _walk(root):
        for param in getattr(command, "params", []):
            if getattr(param, "param_type_name", "") == "argument" and param.metavar:
                param.make_metavar = lambda ctx=None, usage=False, p=param: (
                    p.metavar if p.required or not usage else f"[{p.metavar}]")
    return root


def _walk(group: Any) -> list[Any]:
    found = [group]
    for command in getattr(group, "commands", {}).values():
        found += _walk(command)
    return found


def run_app(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the typer app with one-line usage errors instead of typer's boxes."""
    from typer._click import exceptions as click_exceptions
    from typer.main import get_command

    if COMPLETE_VAR in os.environ:
        # Typer registers its shell-completion classes only with add_completion (which would also add
        # --install-completion / --show-completion to every help); `qctl completion SHELL` replaces those.
        from typer._completion_classes import completion_init

        completion_init()
    command = plain_metavars(get_command(app))
    try:
        code = command.main(args=args, prog_name="qctl", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        return int(ExitCode.USAGE)
    except click_exceptions.ClickException as exc:
        hint = ""
        context = getattr(exc, "ctx", None)
        if context is not None:
            hint = f" (see '{context.command_path} --help')"
        output.error(exc.format_message() + hint)
        return int(exc.exit_code) if exc.exit_code else int(ExitCode.USAGE)
    except typer.Abort:
        output.error("interrupted; nothing was lost")
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        output.error("interrupted; nothing was lost")
        return int(ExitCode.INTERRUPTED)
    return code if isinstance(code, int) else 0
