"""Reading never counts against a limit: the one place that decides what a command may do.

Where taking a message and handing it back counts as a delivery or receive
(RabbitMQ quorum queues with ``x-delivery-limit``, from an argument or a
policy; SQS queues with a RedrivePolicy's ``maxReceiveCount``), a message
already at its limit would be dead-lettered, or dropped, by a mere look.  The
source's :class:`~qctl.primitives.SourceTraits` say so (``counts_reads``), and:

* peek, and a copy (``backup``, ``move --copy``), would return every message
  they read: refused before anything is taken;
* a dry run counts from the broker's figures when its counts do not depend
  on the messages (``--to`` and no ``--where``/``--max-redrives``), and is
  refused otherwise;
* redrive, move and purge run, and the engine copies every message they keep
  to the source's tail and settles the original, so nothing is returned.
"""

from __future__ import annotations

from qctl.errors import Refused
from qctl.primitives import SourceTraits


def _limit(traits: SourceTraits) -> str:
    if traits.limit_reason:
        return traits.limit_reason
    if traits.read_limit is not None:
        return f"a delivery limit of {traits.read_limit}"
    return "a delivery limit that cannot be read"


def check_peek(queue: str, traits: SourceTraits) -> None:
    if traits.counts_reads:
        raise Refused(f"refusing to peek {queue!r}: it has {_limit(traits)}, and a peek must take each message and "
                      f"return it, which counts toward that limit and could dead-letter or drop it",
                      hint=traits.limit_hint or "remove or raise the limit first")


def check_copy(queue: str, traits: SourceTraits, what: str) -> None:
    if traits.counts_reads:
        raise Refused(f"refusing to {what} {queue!r}: it has {_limit(traits)}, and {what} would take every message "
                      f"and return it, which counts toward that limit",
                      hint="use purge --backup (which deletes what it wrote), or remove or raise the limit first")


def dry_run_from_figures(queue: str, traits: SourceTraits, *, needs_messages: bool) -> bool:
    """True when the dry run must count from the broker's figures; raises when it cannot at all."""
    if not traits.counts_reads:
        return False
    if needs_messages:
        raise Refused(f"refusing a dry run on {queue!r}: it has {_limit(traits)}, and counting per target means "
                      f"taking every message and returning it, which counts toward that limit",
                      hint="give --to QUEUE (and no --where or --max-redrives) to count from the queue's depth")
    return True
