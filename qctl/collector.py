"""The cyclic garbage collector, set for passes that read a million messages.

A pass allocates a few dicts and objects per message and frees them at once;
none of it is cyclic in bulk.  With Python's default threshold (a collection
every 700 net allocations) the collector ran ~600 times over 40,000 Sidekiq
jobs and took ~12% of the process's CPU (measured with ``gc.callbacks``).  Set
here, it collects every 50,000 (still well under a megabyte of garbage between
collections), and the objects start-up made are frozen, so that a full
collection does not walk them again.
"""

from __future__ import annotations

import gc

GENERATION0 = 50_000


def for_passes() -> None:
    """Collect rarely; called once, first thing, by the ``qctl`` command."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GENERATION0, older, oldest)
