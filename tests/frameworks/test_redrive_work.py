"""How much work a filtered redrive of a job framework's failed set does per job: Redis round trips and the
arguments it sends, counted (not timed), in this process."""

from __future__ import annotations

import contextlib
import io
import json
import zlib
from typing import Any

import pytest

from qctl.adapters.redis import scripts, wire
from qctl.adapters.redis.layouts import steps
from qctl.boundary import run_app
from qctl.cli import app
from tests.frameworks import fixtures
from tests.frameworks.conftest import layout_url

WHERE = "contains(dead_letter.reason, 'Timeout')"
JOBS = 120  # half of them TimeoutError


def _build(framework: str, queue: str) -> None:
    half = JOBS // 2
    if framework == "rq":
        fixtures.rq_bulk_failed(queue, half, exc="TimeoutError")
        fixtures.rq_bulk_failed(queue, half, exc="ValueError")
    else:
        fixtures.bullmq_bulk_failed(queue, half, error_name="TimeoutError")
        fixtures.bullmq_bulk_failed(queue, half, error_name="TypeError")


def _redrive_the_timeouts(framework: str, queue: str) -> None:
    """``qctl redrive Q:failed --where <the TimeoutError half>`` in this process: half moved, half kept."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_app(app, ["redrive", "-u", layout_url(framework), f"{queue}:failed", "--where", WHERE,
                             "-q", "-o", "json"])
    result = json.loads(out.getvalue())
    assert code == 0 and (result["moved"], result["skipped"], result["failed"]) == (JOBS // 2, JOBS // 2, 0)


@pytest.mark.parametrize(("framework", "step_args"), [("rq", 22), ("bullmq", 24)])
def test_a_filtered_redrive_does_a_bounded_amount_of_work_per_job(
        frameworks_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, framework: str, step_args: int) -> None:
    queue = fixtures.unique_queue(framework, framework)
    _build(framework, queue)
    db = fixtures.client(framework)
    if framework == "rq":  # a job's own ttl: requeue's job.cleanup(ttl=job.ttl) sets it on the job hash
        for job_id in db.zrange(f"rq:failed:{queue}", 0, -1):
            db.hset(b"rq:job:" + job_id, "ttl", 900)
    calls: list[tuple[str, int]] = []  # (kind, arguments) per script call
    real = scripts.run

    def counted(client: Any, source: str, keys: list[Any], args: list[Any]) -> Any:
        kind = "step" if source.startswith(steps.GUARDED[:40]) else "other"
        calls.append((kind, len(keys) + len(args)))
        return real(client, source, keys, args)

    monkeypatch.setattr(scripts, "run", counted)
    reads: list[list[bytes]] = []  # the command names of each raw pipeline
    real_pipeline = wire.pipeline

    def counted_pipeline(client: Any, commands: Any) -> Any:
        reads.append([c[0] for c in commands])
        return real_pipeline(client, commands)

    monkeypatch.setattr(wire, "pipeline", counted_pipeline)
    _redrive_the_timeouts(framework, queue)
    # A few round trips per chunk, not per job: read a window, fetch its jobs in one pipeline, one step.
    assert len(calls) <= 8, calls
    # The jobs are read with plain commands parsed by hiredis, one HGETALL each (and RQ's newest result),
    # not a script: every EVALSHA is counted in ``calls`` too, so a script read would show there.
    fetched = [name for names in reads for name in names if name != b"EVALSHA"]
    per_job = [b"HGETALL", b"XREVRANGE"] if framework == "rq" else [b"HGETALL"]
    assert sorted(fetched) == sorted(per_job * JOBS), reads
    assert sum(1 for names in reads if b"EVALSHA" not in names) <= 2, reads
    # What the guarded steps carry per job moved: its checks and one framework macro, not forty arguments.
    sent = sum(n for kind, n in calls if kind == "step")
    assert sent <= step_args * (JOBS // 2), (sent, calls)
    # One window (the chunk is 500): nothing to read ahead, and no job read twice.
    if framework == "rq":  # FailedJobRegistry.requeue's fields, as the one macro writes them
        ids = db.lrange(f"rq:queue:{queue}", 0, -1)
        assert len(ids) == JOBS // 2
        for job_id in ids:
            job = db.hgetall(b"rq:job:" + job_id)
            assert (job[b"status"], job[b"origin"], job[b"started_at"], job[b"ended_at"], job[b"timeout"],
                    job[b"qctl_redrive_count"]) == (b"queued", queue.encode(), b"", b"", b"180", b"1")
            assert zlib.decompress(job[b"exc_info"]) == b"" and job[b"enqueued_at"] > job[b"created_at"]
            assert 0 < db.ttl(b"rq:job:" + job_id) <= 900


@pytest.mark.parametrize("framework", ["rq", "bullmq"])
def test_windows_are_read_ahead_and_no_job_is_read_twice(
        frameworks_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, framework: str) -> None:
    """With windows of 25 jobs, each window after the first is read in a thread while the one before it is
    decided and stepped; every job is still read exactly once, and the redrive moves what it should."""
    from qctl.adapters.redis.layouts import bullmq, fetch, rq

    monkeypatch.setattr(rq if framework == "rq" else bullmq, "CHUNK", 25)
    queue = fixtures.unique_queue(framework, framework)
    _build(framework, queue)
    read_ahead = {"jobs": 0}
    real_read = fetch.Prefetch._read

    def counted_read(self: fetch.Prefetch, *args: Any) -> None:
        before = self.fetched
        real_read(self, *args)
        read_ahead["jobs"] += self.fetched - before

    monkeypatch.setattr(fetch.Prefetch, "_read", counted_read)
    hgetall = {"n": 0}
    real_pipeline = wire.pipeline

    def counted_pipeline(client: Any, commands: Any) -> Any:
        hgetall["n"] += sum(1 for c in commands if c[0] == b"HGETALL")
        return real_pipeline(client, commands)

    monkeypatch.setattr(wire, "pipeline", counted_pipeline)
    _redrive_the_timeouts(framework, queue)
    assert hgetall["n"] == JOBS  # once each, ahead or in place
    assert read_ahead["jobs"] == JOBS - 25  # every window after the first (nobody else changed the set)
    db = fixtures.client(framework)
    waiting = db.lrange(f"rq:queue:{queue}" if framework == "rq" else f"bull:{queue}:wait", 0, -1)
    assert len(waiting) == len(set(waiting)) == JOBS // 2


def test_sidekiq_parses_a_window_of_jobs_in_one_call(frameworks_env: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A Sidekiq job is its JSON: a window of them is parsed with one ``json`` call (``codec.parse_each``), not
    one call a job, and the JSON a retry pushes is written by an encoder built once, not one per job."""
    from qctl import codec
    from qctl.adapters.redis.layouts import base, sources

    queue = fixtures.unique_queue("skw", "sidekiq")
    fixtures.sidekiq_bulk_failed(queue, JOBS // 2, dead=True, error="QctlTimeoutError")
    fixtures.sidekiq_bulk_failed(queue, JOBS // 2, dead=True, error="ArgumentError")
    counts = {"windows": 0, "joined": 0, "alone": 0, "encoders": 0}

    def counter(name: str, real: Any) -> Any:
        def counted(*args: Any) -> Any:
            counts[name] += 1
            return real(*args)
        return counted

    real_run = scripts.run

    def counted_run(client: Any, source: str, keys: list[Any], args: list[Any]) -> Any:
        counts["windows"] += source == sources.ZSET_WINDOW
        return real_run(client, source, keys, args)

    monkeypatch.setattr(scripts, "run", counted_run)
    monkeypatch.setattr(codec, "_parse", counter("joined", codec._parse))
    monkeypatch.setattr(base, "_decode", counter("alone", base._decode))
    monkeypatch.setattr(json.encoder, "c_make_encoder", counter("encoders", json.encoder.c_make_encoder))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_app(app, ["redrive", "-u", layout_url("sidekiq"), f"{queue}:dead", "--where", WHERE, "-q", "-o",
                             "json"])
    result = json.loads(out.getvalue())
    assert code == 0 and (result["moved"], result["failed"]) == (JOBS // 2, 0), result
    assert counts["windows"] >= 1 and counts["joined"] == counts["windows"], counts
    assert counts["alone"] == 0 and counts["encoders"] == 0, counts
    retried = [json.loads(job) for job in fixtures.client("sidekiq").lrange(f"queue:{queue}", 0, -1)]
    assert len(retried) == JOBS // 2 and {job["error_class"] for job in retried} == {"QctlTimeoutError"}
