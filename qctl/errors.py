"""Exit codes of the command-line contract, and the errors that carry them.

Each error class carries its exit code, so the one error boundary in the CLI
needs no table: it prints ``qctl: error: MESSAGE`` and exits with ``exc.exit_code``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    UNAVAILABLE = 3
    NOT_FOUND = 4
    THRESHOLD = 5
    PARTIAL = 6
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.INTERNAL: "internal error (a bug: full traceback only with --debug)",
    ExitCode.USAGE: "usage: bad argument, URL or config; a destructive command refused without --yes",
    ExitCode.UNAVAILABLE: "cannot reach or authenticate to the broker, or it timed out (--timeout)",
    ExitCode.NOT_FOUND: "queue or topic not found",
    ExitCode.THRESHOLD: "a --fail-above / --fail-lag-above threshold was crossed",
    ExitCode.PARTIAL: "partial: redrive, move or restore left some messages in place (nothing lost)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, SIGINT), with nothing lost",
    ExitCode.TERMINATED: "terminated (SIGTERM), with nothing lost",
}


class QctlError(Exception):
    """Base of every error qctl reports on one line; ``hint`` is printed after it."""

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def code(self) -> ExitCode:
        """The exit code for this error (the class's, unless an instance knows better)."""
        return self.exit_code

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} (hint: {self.hint})" if self.hint else message


class UsageError(QctlError):
    """Bad argument, URL, option combination or config."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The config file or a profile is unreadable or wrong."""


class Refused(UsageError):
    """A destructive command that was not confirmed, or a protected queue."""


class BrokerUnavailable(QctlError):
    """Cannot connect, authenticate, or the broker timed out."""

    exit_code = ExitCode.UNAVAILABLE


class QueueNotFound(QctlError):
    exit_code = ExitCode.NOT_FOUND


class ThresholdCrossed(QctlError):
    exit_code = ExitCode.THRESHOLD


class PartialRedrive(QctlError):
    exit_code = ExitCode.PARTIAL


class LocalFileError(UsageError):
    """A local file (backup, CA certificate, config) that cannot be read or written: exit 2 naming it."""


class Interrupted(QctlError):
    """A signal stopped the command; ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message: str, *, signal_number: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.signal_number = signal_number

    def code(self) -> ExitCode:  # the signal decides, not the class
        import signal

        return ExitCode.TERMINATED if self.signal_number == signal.SIGTERM else ExitCode.INTERRUPTED


class Unsupported(UsageError):
    """The backend or queue type cannot do what was asked."""
