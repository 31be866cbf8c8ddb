"""Purge confirmation: type the queue's name on a terminal, or pass --yes.

Without a terminal there is nobody to ask, so purge refuses (exit 2); cron
jobs must say ``--yes``.  Profiles' ``protected`` globs refuse even ``--yes``
unless ``--force`` is also given.
"""

from __future__ import annotations

import sys

from qctl.config import Target
from qctl.errors import Refused


def refuse_protected(chosen: Target, queue: str, *, force: bool) -> None:
    if chosen.profile is not None and chosen.profile.is_protected(queue) and not force:
        raise Refused(f"queue {queue!r} is protected by profile {chosen.profile.name!r}",
                      hint="add --force to purge it anyway")


def confirm_purge(chosen: Target, queue: str, depth: int, *, what: str = "queue") -> None:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise Refused(f"refusing to purge {queue!r} without --yes (no terminal to ask)",
                      hint="add --yes, or --dry-run to see what would go")
    sys.stderr.write(f"qctl: about to purge {depth} message(s) from {what} {queue!r} on {chosen.options.url}\n"
                     f"qctl: type the {what} name to confirm: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline().strip()
    except EOFError:
        answer = ""
    if answer != queue:
        raise Refused(f"not confirmed (typed {answer!r}, expected {queue!r}); nothing purged")
