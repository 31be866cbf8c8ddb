"""Parallel redrive: the DLQ's partitions split over worker processes, each a :class:`Mover` of its own.

kafka-python is pure Python: one process reads and produces ~20-25k records/s,
bound by the interpreter (the broker needs ~2 µs of CPU a record).  A large
redrive of several partitions therefore runs in up to one worker per CPU (at
most one per partition), each started as ``python -m qctl.adapters.kafka.workers``
with its job pickled on stdin (the URL with its password never appears in argv
or the environment).  A worker owns its partitions: its own consumer and
producer, and it commits only its partitions, each after its own records were
acknowledged, so the safety rules of a single-process redrive hold per worker.

Talking to the parent: the worker writes pickled ``("advance", n)``,
``("done", Tally)`` or ``("error", kind, message, hint)`` to stdout.  The parent
closes a worker's stdin to ask it to stop early (Ctrl-C, another worker's
error): it commits what was acknowledged and ends.  If the parent dies (even
``kill -9``) the worker dies with it (Linux ``PR_SET_PDEATHSIG``; elsewhere it
sees stdin close and stops as above), so nothing keeps moving or committing
behind a re-run's back.

``QCTL_KAFKA_REDRIVE_WORKERS=N`` caps the number of workers (1: never start any).
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import IO, Any

from qctl import errors
from qctl.adapter import ConnectOptions, Progress
from qctl.adapters.kafka.redrive import Mover, Ranges, Tally
from qctl.models import RedriveRequest
from qctl.urls import redact, register_secret

PARALLEL_MIN = 40_000  # records: below this one process finishes before workers would have started
MAX_WORKERS = 8
WORKERS_ENV = "QCTL_KAFKA_REDRIVE_WORKERS"
STOP_GRACE_S = 60.0  # after Ctrl-C: how long workers get to flush and commit before they are killed


@dataclass(frozen=True)
class Job:
    options: ConnectOptions
    dlq: str
    request: RedriveRequest
    ranges: list[tuple[str, int, int, int]]  # topic, partition, start, end


def cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def how_many(ranges: Ranges, request: RedriveRequest) -> int:
    """Workers worth starting: one per CPU and per busy partition, none for small, paced or dry runs."""
    total = sum(end - start for start, end in ranges.values())
    if request.dry_run or request.rate is not None or total < PARALLEL_MIN or not sys.executable:
        return 1
    wanted = cpus()
    setting = os.environ.get(WORKERS_ENV, "").strip()
    if setting:
        try:
            wanted = max(1, int(setting))
        except ValueError:
            raise errors.UsageError(f"{WORKERS_ENV}={setting!r} is not a number") from None
    busy = sum(1 for start, end in ranges.values() if end > start)
    return max(1, min(wanted, busy, MAX_WORKERS))


def split(ranges: Ranges, count: int) -> list[Ranges]:
    """Partitions dealt to ``count`` shares of about equal records (largest first, to the lightest share)."""
    shares: list[Ranges] = [{} for _ in range(count)]
    load = [0] * count
    for tp, (start, end) in sorted(ranges.items(), key=lambda item: item[0].partition - item[1][1] + item[1][0]):
        lightest = load.index(min(load))
        shares[lightest][tp] = (start, end)
        load[lightest] += end - start
    return [share for share in shares if share]


class _Worker:
    def __init__(self, index: int, job: Job, inbox: queue.Queue[tuple[int, Any]]) -> None:
        self.index = index
        self.proc = subprocess.Popen([sys.executable, "-m", "qctl.adapters.kafka.workers", str(os.getpid())],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] | None = self.proc.stdin
        self.stdin.write(pickle.dumps(job))
        self.stdin.flush()
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout, inbox), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[bytes], inbox: queue.Queue[tuple[int, Any]]) -> None:
        try:
            while True:
                inbox.put((self.index, pickle.load(stream)))
        except Exception:  # EOF (the worker ended) or a torn message (it was killed)
            inbox.put((self.index, None))

    def stop(self) -> None:
        """Ask the worker to stop early: it commits what was acknowledged and ends."""
        if self.stdin is not None:
            stdin, self.stdin = self.stdin, None
            try:
                stdin.close()
            except OSError:
                pass

    def end(self, grace: float) -> None:
        """Reap the worker: it has ``grace`` seconds to exit by itself, then it is killed."""
        self.stop()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_parallel(options: ConnectOptions, dlq: str, request: RedriveRequest, shares: list[Ranges],
                 progress: Progress) -> Tally:
    inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
    workers: list[_Worker] = []
    tally = Tally()
    failure: errors.QctlError | None = None
    grace = 0.0  # for the workers still running when this ends by an exception (Ctrl-C twice, a bug)
    try:
        for index, share in enumerate(shares):
            job = Job(options, dlq, request,
                      [(tp.topic, tp.partition, start, end) for tp, (start, end) in share.items()])
            workers.append(_Worker(index, job, inbox))
        try:
            failure = _supervise(workers, inbox, tally, progress)
        except KeyboardInterrupt:
            _stop_all(workers)  # they commit what was acknowledged, then end
            raise
        grace = 10.0  # every worker has reported: let them exit by themselves
    finally:
        for worker in workers:
            worker.end(grace)
    if failure is not None:
        raise failure
    return tally


def _supervise(workers: list[_Worker], inbox: queue.Queue[tuple[int, Any]], tally: Tally,
               progress: Progress) -> errors.QctlError | None:
    """Relay progress and results until every worker has ended; the first failure stops the others."""
    failure: errors.QctlError | None = None
    running = len(workers)
    finished: set[int] = set()
    while running:
        try:
            index, message = inbox.get(timeout=0.5)
        except queue.Empty:
            continue
        if message is None:
            running -= 1
            if index not in finished and failure is None:
                code = workers[index].proc.wait()
                failure = errors.QctlError(f"a redrive worker ended unexpectedly (exit status {code}); "
                                           "nothing is lost: run the redrive again to finish")
                _stop_all(workers)
        elif message[0] == "advance":
            progress.advance(message[1])
        elif message[0] == "done":
            finished.add(index)
            tally.add(message[1])
        elif message[0] == "error":
            finished.add(index)
            if failure is None:
                failure = _error(*message[1:])
                _stop_all(workers)
    return failure


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()
    # After Ctrl-C: give the workers time to commit what was acknowledged (they ignore SIGINT).
    for worker in workers:
        try:
            worker.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass


def _error(kind: str, message: str, hint: str | None) -> errors.QctlError:
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.QctlError)):
        cls = errors.QctlError
    return cls(message, hint=hint)


# --- the worker process ----------------------------------------------------


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the parent dies (Linux); then make sure it has not died already."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it asks us to stop through stdin
    _die_with_parent(int(sys.argv[1]))
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but messages on the pipe
    job: Job = pickle.load(sys.stdin.buffer)
    if job.options.url.password:
        register_secret(job.options.url.password)
    stop = threading.Event()

    def watch_stdin() -> None:
        while os.read(0, 4096):  # unbuffered: a daemon thread blocked here cannot stall the exit
            pass
        stop.set()  # EOF: the parent closed it or died

    threading.Thread(target=watch_stdin, daemon=True).start()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            try:
                out.write(pickle.dumps(message))
                out.flush()
            except OSError:  # the parent is gone
                stop.set()

    try:
        from kafka import TopicPartition

        from qctl.adapters.kafka.cluster import Cluster
        from qctl.adapters.kafka.connection import admin_client

        ranges = {TopicPartition(topic, partition): (start, end) for topic, partition, start, end in job.ranges}
        admins: list[Any] = []

        def exists(topic: str) -> bool:
            if not admins:
                admins.append(admin_client(job.options))
            return topic in Cluster(admins[0], job.options.timeout).partitions([topic])

        try:
            mover = Mover(job.options, job.dlq, job.request, exists)
            tally = mover.run(ranges, lambda count: send(("advance", count)), stop.is_set)
        finally:
            for admin in admins:
                admin.close()
        send(("done", tally))
    except errors.QctlError as exc:
        send(("error", type(exc).__name__, redact(exc.args[0] if exc.args else str(exc)), exc.hint))
    except BaseException:
        send(("error", "QctlError", redact("redrive worker failed: " + traceback.format_exc(limit=-8)), None))


if __name__ == "__main__":
    main()
