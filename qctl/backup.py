"""``purge --backup FILE``: messages written durably before they are deleted.

The file is the ``peek -o jsonl`` format, one message a line.  Adapters call
:meth:`BackupWriter.write` with a chunk and delete only after it returns: by
then the chunk is flushed and fsynced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from qctl.adapter import NoProgress, Progress
from qctl.codec import message_from_json, message_to_json
from qctl.errors import UsageError
from qctl.models import Message


class BackupWriter:
    def __init__(self, path: Path, progress: Progress | None = None) -> None:
        if path.exists() and path.stat().st_size > 0:
            raise UsageError(f"backup file {str(path)!r} already exists and is not empty",
                             hint="choose a new file; qctl never overwrites a backup")
        try:
            self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise UsageError(f"cannot write backup file {str(path)!r}: {exc.strerror}") from None
        self.path = path
        self.progress = progress or NoProgress()

    def write(self, messages: Sequence[Message]) -> None:
        """Append ``messages`` and make them durable before returning."""
        for message in messages:
            self._file.write(json.dumps(message_to_json(message), ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.progress.advance(len(messages))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_messages(path: Path) -> Iterator[Message]:
    """Messages from a backup or ``peek -o jsonl`` file (``-o json`` arrays too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if text.lstrip().startswith("["):
        rows = _loads(text, path, 1)
        if not isinstance(rows, list):
            raise UsageError(f"{str(path)!r}: expected a JSON array of messages")
        for row in rows:
            yield message_from_json(row)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield message_from_json(_loads(line, path, number))


def _loads(text: str, path: Path, line: int) -> dict:  # type: ignore[type-arg]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{str(path)!r} line {line}: not JSON ({exc.msg})") from None
    return value  # type: ignore[no-any-return]
