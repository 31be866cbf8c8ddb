"""What every job-framework layout shares: choosing it (URL, profile, auto), and atomic redrives (kill -9)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from qctl.adapters.redis.layouts.detect import SCAN_PAGES
from qctl.testing import contract
from tests.conftest import QctlRunner
from tests.frameworks import drivers, fixtures
from tests.frameworks.conftest import layout_url

SPARE_DB = 15  # a database no framework test uses, for detection cases (never flushed: others may use it)


def test_auto_detects_the_framework_from_a_few_probes(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    queue = fixtures.unique_queue("auto", "rq")
    fixtures.rq_enqueue(queue, ok=2)
    rq = fixtures.redis_url("rq") + "?layout=auto"
    row = qctl("stats", "-u", rq, "-o", "json", queue).json()[0]
    assert (row["type"], row["depth"]) == ("rq", 2)
    sidekiq = qctl("stats", "-u", fixtures.redis_url("sidekiq") + "?layout=auto", "-o", "json", "dead").json()
    assert sidekiq[0]["type"] == "sidekiq-dead"
    base = fixtures.redis_url("rq").rsplit("/", 1)[0]
    spare = redis.Redis.from_url(f"{base}/{SPARE_DB}")
    if spare.exists("rq:queues", "queues", "unacked_index", "_kombu.binding.celery") or next(
            spare.scan_iter(match="bull:*:meta", count=1000), None):
        pytest.skip(f"db {SPARE_DB} holds someone's framework keys: no empty database to detect nothing in")
    url = f"{base}/{SPARE_DB}?layout=auto"
    none = qctl("stats", "-u", url)
    assert none.rc == 2 and "found no job framework" in none.err, none
    try:  # two frameworks' registry keys in one database (only these two keys, removed afterwards)
        spare.sadd("rq:queues", "rq:queue:qctl-test")
        spare.sadd("queues", "qctl-test")
        both = qctl("stats", "-u", url)
        assert both.rc == 2 and "rq and sidekiq" in both.err, both
    finally:
        spare.delete("rq:queues", "queues")


def test_auto_detects_bullmq_and_celery_from_what_their_frameworks_wrote(frameworks_env: dict[str, str],
                                                                         qctl: QctlRunner) -> None:
    bull = fixtures.unique_queue("auto", "bullmq")
    fixtures.bullmq_add(bull, ok=1, failing=2, error_name="TypeError")
    fixtures.bullmq_work(bull, fail=True)
    url = fixtures.redis_url("bullmq") + "?layout=auto"
    rows = qctl("stats", "-u", url, "-o", "json", bull, f"{bull}:failed").json()
    assert [(r["type"], r["depth"]) for r in rows] == [("bullmq", 0), ("bullmq-failed", 2)], rows
    peeked = qctl("peek", "-u", url, "--dead", bull, "-o", "json").json()
    assert [r["dead_letter"]["reason"] for r in peeked] == ["TypeError: qctl test failure"] * 2

    celery = fixtures.unique_queue("auto", "celery")
    fixtures.celery_send(celery, 3, priorities=(0, 6))
    row = qctl("stats", "-u", fixtures.redis_url("celery") + "?layout=auto", "-o", "json", celery).json()[0]
    assert (row["type"], row["depth"], row["by_priority"]) == ("celery", 3, {"0": 2, "6": 1})


def _calls(db: redis.Redis) -> dict[str, int]:
    return {key.removeprefix("cmdstat_"): int(value["calls"]) for key, value in db.info("commandstats").items()}


def _fewest_calls(db: redis.Redis, run: Callable[[], object], times: int = 3) -> dict[str, int]:
    """Commands the server ran during ``run``, per command (INFO commandstats, script commands included), the
    fewest of a few runs: other clients' traffic meanwhile (a suite running alongside) only adds."""
    fewest: dict[str, int] = {}
    for attempt in range(times):
        before = _calls(db)
        run()
        used = {name: calls - before.get(name, 0) for name, calls in _calls(db).items()}
        names = set(used) | set(fewest)
        fewest = used if attempt == 0 else {n: min(used.get(n, 0), fewest.get(n, 0)) for n in names}
    return {name: calls for name, calls in fewest.items() if calls}


def _filler(db: redis.Redis, n: int) -> str:
    """``n`` plain string keys under a fresh prefix (deleted by the caller), so that a scan would show."""
    prefix = f"qctl-filler-{uuid.uuid4().hex[:10]}"
    pipe = db.pipeline(transaction=False)
    for start in range(0, n, 1000):
        pipe.mset({f"{prefix}:{i}": b"x" for i in range(start, min(n, start + 1000))})
    pipe.execute()
    return prefix


def _unfill(db: redis.Redis, prefix: str, n: int) -> None:
    for start in range(0, n, 1000):
        db.unlink(*(f"{prefix}:{i}" for i in range(start, min(n, start + 1000))))


def test_auto_detection_is_a_few_probes_not_a_scan(frameworks_env: dict[str, str], qctl: QctlRunner) -> None:
    """Counted on the server: ?layout=auto costs one pipeline of TYPE probes where a framework keeps a registry
    (or the queue is named), and at most SCAN_PAGES SCAN calls where none answers, however many keys there are."""
    queue = fixtures.unique_queue("auto", "rq")
    fixtures.rq_enqueue(queue, ok=1)
    db = fixtures.client("rq")
    n = 6000
    prefix = _filler(db, n)
    try:
        assert db.dbsize() > n
        explicit = _fewest_calls(db, lambda: qctl("stats", "-u", layout_url("rq"), "-o", "json", queue))
        auto = _fewest_calls(db, lambda: qctl("stats", "-u", fixtures.redis_url("rq") + "?layout=auto", "-o", "json",
                                              queue))
    finally:
        _unfill(db, prefix, n)
    # rq:queues, queues, _kombu.binding.celery, unacked_index, and the named queue's key in each of 5 layouts
    assert auto.get("type", 0) - explicit.get("type", 0) <= 9, (auto, explicit)
    assert not {"scan", "keys"} & (set(auto) | set(explicit)), (auto, explicit)
    assert sum(auto.values()) - sum(explicit.values()) <= 9, (auto, explicit)

    base = fixtures.redis_url("rq").rsplit("/", 1)[0]
    spare = redis.Redis.from_url(f"{base}/{SPARE_DB}")
    prefix = _filler(spare, n)  # more keys than SCAN_PAGES pages hold, none of any framework
    try:
        if spare.exists("rq:queues", "queues", "unacked_index", "_kombu.binding.celery") or next(
                spare.scan_iter(match="bull:*:meta", count=1000), None):
            pytest.skip(f"db {SPARE_DB} holds someone's framework keys: no database where nothing answers")
        none = _fewest_calls(spare, lambda: qctl("stats", "-u", f"{base}/{SPARE_DB}?layout=auto"))
    finally:
        _unfill(spare, prefix, n)
    assert none.get("scan", 0) <= SCAN_PAGES and none.get("type", 0) <= 4 and "keys" not in none, none


@pytest.mark.parametrize("name", ["RQDriver", "BullMQDriver", "SidekiqJobDriver"])
def test_the_contract_case_for_max_redrives_runs_on_jobs(frameworks_env: dict[str, str], qctl: QctlRunner,
                                                         name: str) -> None:
    """The contract's --max-redrives case on these layouts' jobs, which keep x-qctl-redrive-count in their record.
    In tests/contract it skips for them: it asks ``carries_headers`` (any header), which these layouts do not."""
    driver = getattr(drivers, name)(frameworks_env)
    driver.capabilities = dataclasses.replace(driver.capabilities, carries_headers=True)
    contract.test_redrive_counts_redrives_and_max_redrives_leaves_poison_in_place(driver, qctl)


def test_layout_from_the_profile_unknown_layouts_and_dead_without_one(frameworks_env: dict[str, str],
                                                                      qctl: QctlRunner, tmp_path: Path) -> None:
    queue = fixtures.unique_queue("prof", "bullmq")
    fixtures.bullmq_add(queue, ok=1)
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.jobs]\nurl = "{fixtures.redis_url("bullmq")}"\nlayout = "bullmq"\n')
    env = {"QCTL_CONFIG": str(config)}
    row = qctl("stats", "-p", "jobs", "-o", "json", queue, env=env).json()[0]
    assert (row["type"], row["depth"]) == ("bullmq", 1)
    unknown = qctl("stats", "-u", fixtures.redis_url("bullmq") + "?layout=resque")
    assert unknown.rc == 2 and "unknown Redis layout" in unknown.err
    plain = qctl("peek", "-u", fixtures.redis_url("bullmq"), "--dead", queue)
    assert plain.rc == 2 and "--dead" in plain.err
    doubled = qctl("peek", "-u", layout_url("bullmq"), "--dead", f"{queue}:failed")
    assert doubled.rc == 2 and "--dead" in doubled.err


# --- kill -9 in the middle of a large redrive: every job in exactly one place -----------------------------

def _rq(queue: str, n: int) -> Callable[[redis.Redis], tuple[set[bytes], list[bytes]]]:
    fixtures.rq_bulk_failed(queue, n, exc="TimeoutError")

    def where(db: redis.Redis) -> tuple[set[bytes], list[bytes]]:
        pipe = db.pipeline(transaction=True)
        pipe.zrange(f"rq:failed:{queue}", 0, -1)
        pipe.lrange(f"rq:queue:{queue}", 0, -1)
        failed, waiting = pipe.execute()
        return set(failed), waiting

    return where


def _bullmq(queue: str, n: int) -> Callable[[redis.Redis], tuple[set[bytes], list[bytes]]]:
    fixtures.bullmq_bulk_failed(queue, n, error_name="TimeoutError")

    def where(db: redis.Redis) -> tuple[set[bytes], list[bytes]]:
        pipe = db.pipeline(transaction=True)
        pipe.zrange(f"bull:{queue}:failed", 0, -1)
        pipe.lrange(f"bull:{queue}:wait", 0, -1)
        failed, waiting = pipe.execute()
        return set(failed), waiting

    return where


def _sidekiq(queue: str, n: int) -> Callable[[redis.Redis], tuple[set[bytes], list[bytes]]]:
    fixtures.sidekiq_bulk_failed(queue, n, dead=True, error="QctlTimeoutError")

    def where(db: redis.Redis) -> tuple[set[bytes], list[bytes]]:
        pipe = db.pipeline(transaction=True)
        pipe.zrange("dead", 0, -1)
        pipe.lrange(f"queue:{queue}", 0, -1)
        dead, waiting = pipe.execute()
        return ({json.loads(m)["jid"].encode() for m in dead if json.loads(m)["queue"] == queue},
                [json.loads(m)["jid"].encode() for m in waiting])

    return where


CASES = {"rq": (_rq, "{q}:failed", 4000), "bullmq": (_bullmq, "{q}:failed", 4000),
         "sidekiq": (_sidekiq, "{q}:dead", 3000)}


@pytest.mark.parametrize("framework", sorted(CASES))
def test_kill_9_mid_redrive_leaves_every_job_in_exactly_one_place(frameworks_env: dict[str, str], framework: str,
                                                                  qctl: QctlRunner, tmp_path: Path) -> None:
    make, dlq, n = CASES[framework]
    queue = fixtures.unique_queue(f"kill-{framework}", framework)
    where = make(queue, n)
    db = fixtures.client(framework)
    everything, waiting = where(db)
    assert len(everything) == n and waiting == []
    args = [sys.executable, "-m", "qctl", "redrive", "-u", layout_url(framework), dlq.format(q=queue),
            "--rate", "800", "-q"]
    proc = subprocess.Popen(args, env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    snapshots = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            failed, moved = where(db)  # one MULTI: a consistent instant
            assert not failed & set(moved), "a job in both places"
            assert len(moved) == len(set(moved)) and failed | set(moved) == everything, "a job lost or doubled"
            snapshots += 1
            if len(moved) >= n // 4:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the redrive did not get a quarter through in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    failed, moved = where(db)
    assert not failed & set(moved) and failed | set(moved) == everything and len(moved) == len(set(moved))
    assert 0 < len(moved) < n and snapshots > 1
    rest = qctl("redrive", "-u", layout_url(framework), dlq.format(q=queue), "-o", "json", timeout=600)
    assert rest.rc == 0 and rest.json()["moved"] == n - len(moved), rest
    failed, moved = where(db)
    assert failed == set() and sorted(moved) == sorted(everything)
