"""The rates of ``stats --watch`` from broker counters, frame by frame, without a broker (qctl.rates)."""

from __future__ import annotations

from qctl.models import QueueStats
from qctl.rates import RateTracker


def _frames(totals: list[int | None], *, depth: int = 100, seconds: float = 1.0) -> list[float | None]:
    """``in_rate`` at each frame of a row whose ``total_in`` reads ``totals``, one frame every ``seconds``."""
    tracker = RateTracker()
    rates = []
    for index, total in enumerate(totals):
        row = QueueStats(backend="rabbitmq", queue="q", type="classic", depth=depth, total_in=total)
        [built] = tracker.update([(row, {"queue": "q"})], now=index * seconds)
        rates.append(built["in_rate"])
    return rates


def test_a_live_counter_is_differenced_frame_by_frame_and_reads_zero_at_once() -> None:
    assert _frames([0, 100, 200, 300, 300, 300, 350]) == [None, 100, 100, 100, 0, 0, 50]


def test_a_counter_that_moves_every_fifth_frame_is_held_between_its_steps() -> None:
    # RabbitMQ's statistics every 5 s, --watch 1: not 0, 0, 0, 0, 500 but 100 throughout.
    totals = [0, 0, 0, 500, 500, 500, 500, 500, 1000, 1000, 1000, 1000, 1000, 1500]
    rates = _frames(totals)
    assert rates[:4] == [None, 0, 0, round(500 / 3, 2)]  # the first step: how long 0 had stood is unknown
    assert rates[8:] == [100] * 6  # 500 in 5 s, held until the next step
    # It stops: held through the frame its next step was due and one more (a late sample), then 0.
    assert _frames([*totals, *[1500] * 7])[-7:] == [100] * 5 + [0, 0]


def test_a_counter_that_goes_back_starts_over_and_the_depth_stands_in() -> None:
    tracker = RateTracker()
    rates = []
    for now, (total, depth) in enumerate([(100, 10), (200, 10), (5, 40), (25, 40)]):
        row = QueueStats(backend="rabbitmq", queue="q", type="classic", depth=depth, total_in=total)
        [built] = tracker.update([(row, {"queue": "q"})], now=float(now))
        rates.append(built["in_rate"])
    assert rates == [None, 100, 30, 20]  # after the reset, one frame from the depth (+30), then the counter


def test_without_a_counter_the_depth_gives_the_net_flow() -> None:
    tracker = RateTracker()
    records = []
    for now, depth in enumerate([100, 90, 80]):
        row = QueueStats(backend="redis", queue="q", type="list", depth=depth)
        [built] = tracker.update([(row, {"queue": "q"})], now=float(now))
        records.append((built["in_rate"], built["out_rate"], built["drain_eta"]))
    assert records == [(None, None, None), (0, 10, 9.0), (0, 10, 8.0)]
