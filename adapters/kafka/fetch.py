"""Read offset ranges with an assigned consumer: no subscription, no group membership, no commits.

The end of each range is an offset read before reading starts, so a reader
terminates even while producers keep appending.  ``timeout`` bounds the time
without progress (not the whole read, which may be millions of records).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from qctl.adapters.kafka.connection import metadata_now, translated
from qctl.errors import BrokerUnavailable

POLL_MS = 200
FIRST_POLL_MS = 10  # doubled on each empty poll up to POLL_MS


def read_ranges(consumer: Any, ranges: Mapping[Any, tuple[int, int]], timeout: float,
                max_records: int | None = None) -> Iterator[tuple[Any, list[Any]]]:
    """Yield (partition, records) with start <= offset < end for each ``ranges[tp] = (start, end)``.

    Partitions are read together; records of one partition come in offset order.
    """
    pending = {tp: bounds for tp, bounds in ranges.items() if bounds[0] < bounds[1]}
    if not pending:
        return
    with translated("cannot read records"):
        consumer.assign(list(pending))
        for tp, (start, _) in pending.items():
            consumer.seek(tp, start)
    metadata_now(consumer)  # the leaders of newly assigned partitions, without the 100 ms backoff
    last_progress = time.monotonic()
    # Short polls first: until it knows the partitions' leaders kafka-python has nothing to fetch, and a
    # poll with nothing to fetch sleeps min(timeout, retry_backoff_ms): 100 ms on a 200 ms poll.
    poll_ms = FIRST_POLL_MS
    while pending:
        with translated("cannot read records"):
            polled = consumer.poll(timeout_ms=poll_ms, max_records=max_records)
        poll_ms = FIRST_POLL_MS if polled else min(POLL_MS, poll_ms * 2)
        for tp, records in polled.items():
            end = pending.get(tp, (0, 0))[1]
            kept = [record for record in records if record.offset < end]
            if kept:
                last_progress = time.monotonic()
                yield tp, kept
        _drop_finished(consumer, pending)
        if pending and time.monotonic() - last_progress > timeout:
            raise BrokerUnavailable(f"no records arrived for {timeout:g} s while reading "
                                    f"{len(pending)} partition(s)", hint="raise --timeout")


def _drop_finished(consumer: Any, pending: dict[Any, tuple[int, int]]) -> None:
    """Stop fetching partitions whose position reached their end offset."""
    finished = []
    with translated("cannot read records"):
        for tp, (_, end) in pending.items():
            if consumer.position(tp) >= end:
                finished.append(tp)
        if finished:
            consumer.pause(*finished)
    for tp in finished:
        del pending[tp]
