"""Backup files: written durably before anything is deleted, read back as a validated stream.

Format (JSON Lines, version 2): a first line
``{"qctl_backup": 2, "backend", "queue", "created", "qctl_version"}``, then
one ``peek`` object per message plus ``header_pairs`` (every header in order,
repeats kept).  ``restore`` also reads version-1 files (no first line; AMQP
properties mixed into ``headers``) and ``peek -o jsonl`` or ``-o json`` output.

Writing: the file is created exclusively (``O_EXCL``: never overwritten, no
check-then-open race), each chunk is written, flushed and fsynced before
:meth:`BackupWriter.write` returns (only then may the source be settled), and
the directory is fsynced once so the file's name survives a crash too.  A
write that fails (no space, a read-only file system, a size limit) truncates
the file back to its last synced chunk, so what is there restores, and raises
:class:`qctl.errors.LocalFileError` (exit 2) naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from qctl.codec import BadRow, backup_line, message_from_json, parse_each
from qctl.errors import LocalFileError
from qctl.models import Message
from qctl.primitives import Carries, Sync, Taken, sync_confirmed

VERSION = 2
HEADER_KEY = "qctl_backup"
PARSE_BATCH = 1000  # lines parsed together when restoring


class BackupWriter:
    """A new backup file; :meth:`write` returns once the chunk is on disk."""

    def __init__(self, path: Path, *, backend: str, queue: str) -> None:
        from qctl import __version__

        self.path = str(path)
        self.written = 0  # messages durably in the file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise LocalFileError(f"backup file {self.path!r} already exists",
                                 hint="choose a new file; qctl never overwrites a backup") from None
        except OSError as exc:
            raise LocalFileError(f"cannot create backup file {self.path!r}: {exc.strerror}") from None
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._synced = 0
        header = {HEADER_KEY: VERSION, "backend": backend, "queue": queue,
                  "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "qctl_version": __version__}
        self._append([json.dumps(header, ensure_ascii=False)])
        _sync_directory(path)

    def write(self, messages: Sequence[Message]) -> None:
        """Append ``messages`` and make them durable before returning."""
        self._append([backup_line(message) for message in messages])
        self.written += len(messages)

    def _append(self, lines: list[str]) -> None:
        try:
            self._file.write(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._truncate()
            raise LocalFileError(f"cannot write backup file {self.path!r}: {exc.strerror or exc}; "
                                 f"{self.written} message(s) are safely in it") from None
        self._synced = self._file.tell()

    def _truncate(self) -> None:
        """Drop a partly written chunk, so that every line in the file is whole."""
        try:
            os.ftruncate(self._file.fileno(), self._synced)
            os.fsync(self._file.fileno())
        except OSError:
            pass

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass  # everything written was synced already


class BackupDestination:
    """A backup file as the engine's destination: a chunk is confirmed once it is synced."""

    carries = Carries(key=True, headers=True, header_repeats=True, properties=True, timestamp=True)

    def __init__(self, writer: BackupWriter) -> None:
        self.writer = writer
        self.queue = writer.path

    def refusal(self, message: Message) -> str | None:
        return None

    def send(self, messages: Sequence[Message]) -> Sync:
        self.writer.write(messages)
        return Sync([True] * len(messages))

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool]:
        return sync_confirmed(ticket)

    def move_from(self, reader: Any, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None


def _sync_directory(path: Path) -> None:
    try:
        fd = os.open(path.resolve().parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # some file systems cannot open a directory; the file itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading -------------------------------------------------------------------


class BackupFile:
    """A backup or peek-output file, read line by line (memory does not grow with the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = 1
        self.header: dict[str, Any] = {}
        self.array = False  # `peek -o json` output: "[", one row per line with trailing commas, "]"
        try:
            with open(path, "rb") as file:
                first = _first_line(file)
        except OSError as exc:
            raise LocalFileError(f"cannot read {str(path)!r}: {exc.strerror}") from None
        if first.startswith("["):
            self.array = True
        elif first:
            try:
                value = json.loads(first)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a header
                value = None
            if isinstance(value, dict) and HEADER_KEY in value:
                if value[HEADER_KEY] != VERSION:
                    raise LocalFileError(f"{str(path)!r}: backup format version {value[HEADER_KEY]!r} is not "
                                         f"one this qctl reads (1 or {VERSION})", hint="use a newer qctl")
                self.version, self.header = VERSION, value

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every message line."""
        try:
            with open(self.path, encoding="utf-8", errors="surrogateescape") as file:
                for number, raw in enumerate(file, start=1):
                    text = raw.strip()
                    if self.array:
                        text = text.removeprefix("[").removesuffix("]").strip().removesuffix(",").strip()
                    if not text or (number == 1 and self.header):
                        continue
                    yield number, text
        except OSError as exc:
            raise LocalFileError(f"cannot read {str(self.path)!r}: {exc.strerror}") from None

    def messages(self, skip: int = 0) -> Iterator[tuple[int, Message]]:
        """(line number, message) after the first ``skip`` messages; a bad line raises LocalFileError.

        Lines are parsed a batch at a time (:func:`qctl.codec.parse_each`); at most one batch is held."""
        seen = 0
        batch: list[tuple[int, str]] = []
        for number, text in self.lines():
            seen += 1
            if seen <= skip:
                continue
            batch.append((number, text))
            if len(batch) >= PARSE_BATCH:
                yield from self._batch(batch)
                batch = []
        yield from self._batch(batch)

    def _batch(self, batch: list[tuple[int, str]]) -> Iterator[tuple[int, Message]]:
        rows = parse_each([text for _, text in batch])
        if rows is None:  # some line is not one JSON value: parse them one by one, to name the bad one
            for number, text in batch:
                yield number, self._parse(number, text)
            return
        for (number, _), row in zip(batch, rows, strict=True):
            try:
                message = message_from_json(row)
            except BadRow as exc:
                raise LocalFileError(f"{str(self.path)!r} line {number}: not a message ({exc}); nothing was "
                                     f"restored") from None
            yield number, message

    def validate(self, refusal: Callable[[Message], str | None] = lambda _m: None) -> int:
        """Read every line before anything is published; return how many messages there are."""
        count = 0
        for number, message in self.messages():
            reason = refusal(message)
            if reason is not None:
                raise LocalFileError(f"{str(self.path)!r} line {number}: {reason}; nothing was restored")
            count += 1
        return count

    def _parse(self, number: int, text: str) -> Message:
        try:
            return message_from_json(json.loads(text))
        except ValueError as exc:  # json.JSONDecodeError and BadRow
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            kind = "not JSON" if not isinstance(exc, BadRow) else "not a message"
            raise LocalFileError(f"{str(self.path)!r} line {number}: {kind} ({detail}); nothing was restored"
                                 ) from None
        except RecursionError:
            raise LocalFileError(f"{str(self.path)!r} line {number}: nested too deeply; nothing was restored"
                                 ) from None


def _first_line(file: IO[bytes]) -> str:
    for raw in file:
        text = raw.strip()
        if text:
            return text.decode("utf-8", "replace")
    return ""
