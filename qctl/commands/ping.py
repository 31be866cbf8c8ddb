"""``qctl ping``: is this profile ready for cron?  One line per capability, a ✓ or ✗ and the reason.

Exit 0 when every check holds, 3 when qctl cannot connect or authenticate, 6 when a capability some
command needs is missing.  Checks change nothing on the broker.
"""

from __future__ import annotations

import sys
from typing import Any

from qctl import output
from qctl.commands.common import open_adapter
from qctl.config import Target
from qctl.errors import BrokerUnavailable, PartialRedrive, QctlError
from qctl.models import Check

REACHING = ("connect", "authenticate")
MARKS = {True: "✓", False: "✗", None: "-"}


def run_ping(chosen: Target, fmt: str, *, given: dict[str, Any]) -> None:
    with open_adapter(chosen, given=given) as adapter:
        try:
            checks = adapter.ping()
        except QctlError as exc:  # an adapter that could not even start its checks
            checks = [Check(check="connect", ok=False, detail=str(exc))]
    records = [{"check": c.check, "ok": c.ok, "detail": c.detail, "needed_by": c.needed_by} for c in checks]
    if fmt == "table":
        for check in checks:
            needed = f" (needed by {check.needed_by})" if check.needed_by and check.ok is False else ""
            sys.stdout.write(output.visible(f"{MARKS[check.ok]} {check.check:<15} {check.detail}{needed}") + "\n")
    else:
        output.rows(records, fmt, ["check", "ok", "detail", "needed_by"])
    failed = [c for c in checks if c.ok is False]
    if any(c.check in REACHING for c in failed):
        first = next(c for c in failed if c.check in REACHING)
        raise BrokerUnavailable(f"{first.check} failed: {first.detail}")
    if failed:
        raise PartialRedrive(f"{len(failed)} capability(ies) missing on {chosen.options.url}: "
                             + ", ".join(c.check for c in failed))
