"""Backups across backends: a backup taken on A restores on B by the documented mapping (docs/mapping.md).

Every ordered pair of the contract suite's drivers (``BACKENDS`` in
tests/contract/conftest.py, built by its ``driver`` fixture, so a backend added
there joins these tests by itself) runs each case; what B must keep is read
from the two drivers' :class:`~qctl.testing.driver.Capabilities`, never from
their names.  Bodies always arrive byte for byte; a part B cannot keep must be
named in restore's notices, and a part it keeps must arrive.  Also here: old
(version-1) files and ``peek -o jsonl`` output restore, a Kafka record over
``max.message.bytes`` stops a restore before anything is published, and a
200,000-line restore keeps memory flat (counted in a real subprocess).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qctl.codec import iso, message_from_json, parse_iso
from qctl.models import Message
from qctl.testing.contract import rich_messages
from qctl.testing.driver import Driver, plain
from qctl.testing.runner import QctlRunner, Run, runner
from tests.contract import conftest as contract

PLACEHOLDER = b"placeholder: the queue exists before the restore, with the type its driver makes"
BINARY = b"\x00\xff binary \xfe"
OLD = datetime(2021, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


class _Asking:
    """What the ``driver`` fixture body reads of its request: the backend's name, and other fixtures."""

    def __init__(self, request: pytest.FixtureRequest, name: str) -> None:
        self.param = name
        self.getfixturevalue = request.getfixturevalue


def build_driver(request: pytest.FixtureRequest, name: str) -> Any:
    """The contract suite's own ``driver`` fixture body for backend ``name``, so that two can be had at once."""
    body = contract.driver.__wrapped__  # type: ignore[attr-defined]
    arguments = {argument: _Asking(request, name) if argument == "request" else request.getfixturevalue(argument)
                 for argument in inspect.signature(body).parameters}
    return body(**arguments)


@pytest.fixture(scope="session", params=contract.BACKENDS, ids=lambda name: f"from-{name}", name="source")
def source_driver(request: pytest.FixtureRequest) -> Any:
    return build_driver(request, request.param)


@pytest.fixture(scope="session", params=contract.BACKENDS, ids=lambda name: f"to-{name}", name="dest")
def dest_driver(request: pytest.FixtureRequest) -> Any:
    return build_driver(request, request.param)


def backend_driver(request: pytest.FixtureRequest, backend: str, queue_type: str | None = None) -> Any:
    """The first driver of the contract list whose capabilities say ``backend`` (skip when none is listed)."""
    for name in contract.BACKENDS:
        found = build_driver(request, name)
        if found.capabilities.backend == backend and queue_type in (None, found.capabilities.queue_type):
            return found
    pytest.skip(f"no {backend} driver in the contract suite")


# --- reading what arrived ------------------------------------------------------


def rows_of(path: Path) -> list[dict[str, Any]]:
    """The message lines of a backup or peek file (the first line of a version-2 file is its header)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if "qctl_backup" not in row]


def notices(run: Run) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith("qctl: ") and "error" not in line]


def said(run: Run, phrase: str) -> bool:
    return any(phrase in line for line in notices(run))


def text(value: Any) -> str:
    """A header value as text, whatever the broker stored it as (Kafka and stream fields hold bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else json.dumps(value)


def repeats(message: Message) -> bool:
    names = [name for name, _ in message.pairs()]
    return len(set(names)) < len(names)


def check_mapping(src: Driver, dst: Driver, rows: Sequence[dict[str, Any]], got: Sequence[Message],
                  run: Run) -> None:
    """What ``dst`` holds (``got``) and what ``run`` said, against the lines of what ``src`` had (``rows``)."""
    s, d = src.capabilities, dst.capabilities
    before = [message_from_json(row) for row in rows]
    if not (ordered(src) and ordered(dst)):  # match them up by body (the cases' bodies are unique)
        before, got = sorted(before, key=lambda m: m.body), sorted(got, key=lambda m: m.body)
    assert [m.body for m in got] == [m.body for m in before], run  # byte for byte, in order
    ours = {name for sent in rich_messages(src) for name in sent.properties}  # not the broker's own (delivery_info)
    for old, new in zip(before, got, strict=True):
        names = {name for name, _ in old.pairs()}
        if old.pairs() and d.carries_headers:
            kept = [(name, text(value)) for name, value in new.pairs() if name in names]
            wanted = [(name, text(value)) for name, value in old.pairs()]
            if d.repeats_headers and s.repeats_headers:
                assert kept == wanted, (old, new)
            else:
                assert dict(kept) == dict(wanted), (old, new)
        if old.key is not None and d.carries_keys:
            assert new.key == old.key, (old, new)
        for name, value in old.properties.items():
            if name in ours and same_kind(src, dst) and s.carries_properties and d.carries_properties:
                assert new.properties.get(name) == value, (name, old, new)
    # Every part dst cannot keep is named in a notice; no notice for a part it keeps.
    had_headers = any(m.pairs() for m in before)
    assert said(run, "carried headers") == (had_headers and not d.carries_headers), run
    if had_headers and d.carries_headers:
        assert said(run, "more than once") == (any(map(repeats, before)) and not d.repeats_headers), run
    assert said(run, "carried a key") == (any(m.key is not None for m in before) and not d.carries_keys), run
    assert said(run, "carried a timestamp") == (any(m.timestamp for m in before) and not d.carries_timestamps), run
    if same_kind(src, dst):
        if s.carries_properties and d.carries_properties:
            assert not said(run, "carried properties"), run
        return  # within one backend its own layout properties (a stream's body_field) are its driver's business
    # Across backends, a property that did not arrive with its value is named in the notice.
    lost = {name for old, new in zip(before, got, strict=True) for name, value in old.properties.items()
            if value is not None and new.properties.get(name) != value and name != "timestamp"}
    if lost:
        line = next((line for line in notices(run) if "carried properties" in line), "")
        assert all(name in line for name in lost), (lost, run)


def restored_times(qctl: QctlRunner, dst: Driver, queue: str) -> list[datetime | None]:
    """The timestamps of ``queue``'s messages as qctl peeks them (the drivers read no times)."""
    run = qctl("peek", "-u", dst.url, queue, "-n", "1000", "-o", "jsonl")
    assert run.rc == 0, run
    return [parse_iso(row["timestamp"]) if row["timestamp"] else None for row in run.jsonl()]


def comparable(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What two backups of the same messages must agree on, in body order: not redelivery flags, nor the
    properties a read changes (a peek sets them; SQS counts receives)."""
    return sorted((row["body"], row["body_encoding"], row["key"], row.get("header_pairs"), row["timestamp"])
                  for row in rows)


def ordered(driver: Driver) -> bool:
    """Messages come out in the order they went in (False: SQS standard queues)."""
    return bool(getattr(driver.capabilities, "ordered", True))


def same_kind(a: Driver, b: Driver) -> bool:
    return (a.capabilities.backend, a.capabilities.queue_type) == (b.capabilities.backend, b.capabilities.queue_type)


def takes_foreign_lines(src: Driver | None, dst: Driver) -> bool:
    """Whether ``dst`` can take messages that its own kind of queue did not write.  False (MQTT: a retained
    message needs its own topic under the filter restored to): each such line or message is refused,
    before anything is published."""
    return bool(getattr(dst.capabilities, "restores_bare_rows", True)) or (src is not None and same_kind(src, dst))


def fresh_queue(driver: Driver, prefix: str) -> str:
    """A queue that exists, holding only PLACEHOLDER, so restores append to a queue of the driver's kind."""
    name = driver.unique(prefix)
    make_placeholder(driver, name)
    return name


def make_placeholder(driver: Driver, name: str) -> None:
    """``name`` holding only PLACEHOLDER (a driver may put it where nothing restored lands: MQTT's topics)."""
    made = getattr(driver, "make_placeholder", None)
    if made is not None:
        made(name, PLACEHOLDER)
    else:
        driver.make_queue(name, plain([PLACEHOLDER]))


def restored(driver: Driver, queue: str) -> list[Message]:
    """What a restore added to a :func:`fresh_queue`: its messages but the placeholder (first, if ordered)."""
    found = driver.messages(queue)
    if ordered(driver):
        assert found and found[0].body == PLACEHOLDER, found
    return [message for message in found if message.body != PLACEHOLDER]


def restored_bodies(driver: Driver, queue: str) -> list[bytes]:
    found = driver.contents(queue)
    if ordered(driver):
        assert found and found[0] == PLACEHOLDER, found
    return [body for body in found if body != PLACEHOLDER]


# --- backups across backends -----------------------------------------------------


class Taken:
    """What a backend's own commands wrote of one queue: a purge --backup file and peek -o jsonl output."""

    def __init__(self, backup: Path, peek: Path, count: int) -> None:
        self.backup, self.peek, self.count = backup, peek, count


@pytest.fixture(scope="session")
def taken(source: Driver, tmp_path_factory: pytest.TempPathFactory) -> Taken:
    """Once per source backend: seed a queue with what it can carry, peek it, back it up, purge it with a
    backup; the two backups must agree and the copy must leave the queue as it was."""
    from qctl.testing.runner import clean_environment

    folder = tmp_path_factory.mktemp("taken")
    qctl = runner(clean_environment(str(folder / "xdg")))
    queue = source.unique("xa")
    sent = [*rich_messages(source), *plain([BINARY])]
    source.make_queue(queue, sent)
    peeked = qctl("peek", "-u", source.url, queue, "-n", "100", "-o", "jsonl")
    assert peeked.rc == 0 and len(peeked.jsonl()) == len(sent), peeked
    peek = folder / "peek.jsonl"
    peek.write_text(peeked.out)
    copy = folder / "copy.jsonl"
    backed_up = qctl("backup", queue, str(copy), "-u", source.url, "-o", "json")
    assert backed_up.rc == 0 and backed_up.json()["backed_up"] == len(sent), backed_up
    assert Counter(source.contents(queue)) == Counter(m.body for m in sent)  # a copy leaves everything in place
    backup = folder / "purged.jsonl"
    purged = qctl("purge", "-u", source.url, queue, "--yes", "--backup", str(backup), "-o", "json")
    assert purged.rc == 0 and purged.json()["purged"] == len(sent), purged
    if not source.capabilities.keeps_settled:
        assert source.contents(queue) == []
    header = json.loads(backup.read_text().splitlines()[0])
    assert (header["qctl_backup"], header["backend"]) == (2, source.capabilities.backend)
    assert comparable(rows_of(backup)) == comparable(rows_of(copy))  # purge --backup and backup agree
    assert Counter(row["body"] for row in rows_of(backup)) == Counter(row["body"] for row in peeked.jsonl())
    return Taken(backup, peek, len(sent))


def test_a_backup_taken_on_one_backend_restores_on_another(source: Driver, dest: Driver, taken: Taken,
                                                            qctl: QctlRunner) -> None:
    target, other = fresh_queue(dest, "xb"), fresh_queue(dest, "xp")
    from_backup = qctl("restore", str(taken.backup), "--to", target, "-u", dest.url, "-o", "json")
    if not takes_foreign_lines(source, dest):
        assert from_backup.rc == 2 and "line 2" in from_backup.err and "nothing was restored" in from_backup.err, \
            from_backup
        assert dest.contents(target) == [PLACEHOLDER]
        return
    assert from_backup.rc == 0 and from_backup.json()["restored"] == taken.count, from_backup
    from_peek = qctl("restore", str(taken.peek), "--to", other, "-u", dest.url, "-o", "json")
    assert from_peek.rc == 0 and from_peek.json()["restored"] == taken.count, from_peek
    rows = rows_of(taken.backup)
    check_mapping(source, dest, rows, restored(dest, target), from_backup)
    check_mapping(source, dest, rows_of(taken.peek), restored(dest, other), from_peek)
    if dest.capabilities.carries_timestamps and ordered(dest) and ordered(source):
        times = restored_times(qctl, dest, target)[1:]
        for row, moment in zip(rows, times, strict=True):
            if row["timestamp"]:  # kept to the destination's precision (RabbitMQ: whole seconds)
                assert moment is not None and timedelta(0) <= parse_iso(row["timestamp"]) - moment < timedelta(
                    seconds=1), (row, moment)


def test_a_message_time_survives_only_where_the_destination_keeps_one(dest: Driver, qctl: QctlRunner,
                                                                    tmp_path: Path) -> None:
    file = tmp_path / "old.jsonl"
    lines = [{"qctl_backup": 2, "backend": "kafka", "queue": "t", "created": "2021-06-02T00:00:00Z"}]
    lines += [{"queue": "t", "position": f"0:{i}", "partition": 0, "offset": i, "body": f"old {i}",
               "body_encoding": "utf-8", "headers": {}, "properties": {}, "timestamp": OLD.isoformat()}
              for i in range(2)]
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # The placeholder's own time (if its queue keeps one) is not before this: whole seconds, as the coarsest
    # destination keeps it (a time cut to the millisecond was once before an unrounded start, same ms).
    started = datetime.now(UTC).replace(microsecond=0)
    target = fresh_queue(dest, "old")
    run = qctl("restore", str(file), "--to", target, "-u", dest.url, "-o", "json")
    if not takes_foreign_lines(None, dest):
        assert run.rc == 2 and "line 2" in run.err and dest.contents(target) == [PLACEHOLDER], run
        return
    assert run.rc == 0 and run.json()["restored"] == 2, run
    assert Counter(restored_bodies(dest, target)) == Counter([b"old 0", b"old 1"])
    times = restored_times(qctl, dest, target)
    if dest.capabilities.carries_timestamps:  # the placeholder has none
        times = [moment for moment in times if moment is not None and moment < started]
    if dest.capabilities.carries_timestamps:
        assert len(times) == 2 and all(t is not None and timedelta(0) <= OLD - t < timedelta(seconds=1)
                                       for t in times), times
        assert not said(run, "timestamp"), run
    else:
        assert all(t is None or t > started - timedelta(minutes=5) for t in times), times  # stamped on arrival
        assert said(run, "carried a timestamp") and "2 message(s)" in run.err, run


# --- older files -------------------------------------------------------------------


VERSION_1 = [
    # RabbitMQ, version 1: AMQP properties mixed into the headers, beside a real header.
    {"queue": "orders", "position": "1", "partition": None, "offset": None, "key": None,
     "headers": {"tenant": "acme", "content_type": "text/plain", "message_id": "m-1", "type": "order.created"},
     "body": "v1 amqp", "body_encoding": "utf-8", "timestamp": None},
    # A Redis sorted set member, version 1: its score in the headers.
    {"queue": "retry", "position": "0", "headers": {"score": 3}, "body": "v1 zset", "body_encoding": "utf-8"},
    # Kafka, version 1: a record's headers are headers, even when named like an AMQP property.
    {"queue": "t", "position": "0:7", "partition": 0, "offset": 7, "key": "k-7", "key_encoding": "utf-8",
     "headers": {"type": "kept as a header", "tenant": "kafka"}, "body": "AAH/", "body_encoding": "base64",
     "timestamp": None},
    # A Redis stream entry, version 1: the name of its body field in the headers.
    {"queue": "s", "position": "1700000000000-0", "headers": {"x-qctl-body-field": "payload", "tenant": "stream"},
     "body": "v1 stream", "body_encoding": "utf-8"},
]
VERSION_1_BODIES = [b"v1 amqp", b"v1 zset", b"\x00\x01\xff", b"v1 stream"]


def test_a_version_1_backup_restores_with_properties_taken_out_of_its_headers(dest: Driver, qctl: QctlRunner,
                                                                             tmp_path: Path) -> None:
    file = tmp_path / "v1.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in VERSION_1))
    target = fresh_queue(dest, "v1")
    run = qctl("restore", str(file), "--to", target, "-u", dest.url, "-o", "json")
    if not takes_foreign_lines(None, dest):
        assert run.rc == 2 and "line 1" in run.err and dest.contents(target) == [PLACEHOLDER], run
        return
    assert run.rc == 0 and run.json()["restored"] == 4, run
    bodies = restored_bodies(dest, target)
    assert (bodies if ordered(dest) else sorted(bodies)) == (VERSION_1_BODIES if ordered(dest) else sorted(
        VERSION_1_BODIES)), bodies
    got = restored(dest, target)
    if not ordered(dest):
        got.sort(key=lambda m: VERSION_1_BODIES.index(m.body) if m.body in VERSION_1_BODIES else 99)
    legacy = {"content_type", "message_id", "score", "x-qctl-body-field"}
    if dest.capabilities.carries_headers:
        shown = [{name: text(value) for name, value in m.headers.items() if name in legacy | {"tenant", "type"}}
                 for m in got]
        assert shown == [{"tenant": "acme"}, {}, {"type": "kept as a header", "tenant": "kafka"},
                         {"tenant": "stream"}], shown  # row 1's "type" was a property: not among its headers
    else:
        assert said(run, "carried headers"), run
    # The properties that came out of the headers arrive where the destination has them, else are named.
    wanted = [(0, "content_type", "text/plain"), (0, "message_id", "m-1"), (0, "type", "order.created"),
              (1, "score", 3)]
    missing = sorted(name for index, name, value in wanted if got[index].properties.get(name) != value)
    if missing:
        line = next((line for line in notices(run) if "carried properties" in line), "")
        assert all(name in line for name in missing), run
    if dest.capabilities.carries_keys:
        assert got[2].key == b"k-7"
    else:
        assert said(run, "carried a key"), run


# --- the writer's and reader's fast paths ------------------------------------------------


def test_the_backup_writer_writes_what_the_peek_row_says_and_the_reader_reads_it_back(tmp_path: Path) -> None:
    """backup_line builds the line from pieces (for speed): it must be json.dumps of the peek row, exactly."""
    from qctl.backup import BackupFile, BackupWriter
    from qctl.codec import backup_line, message_to_json
    from qctl.models import DeadLetter

    odd = [
        Message(queue="q", position="-1", body=b"plain"),
        Message(queue="t", position="0:7", body=BINARY, partition=0, offset=7, key=b"k\xff\x00",
                headers={"a": "two", "b": {"$base64": "/w=="}}, header_pairs=(("a", 1), ("b", b"\xff"), ("a", "two")),
                properties={"priority": 5, "ratio": 1.5, "nested": {"x": [1, None, True]}}, timestamp=OLD,
                redelivered=True, delivery_count=3,
                dead_letter=DeadLetter(reason="rejected", source_queue="orders", count=2, time=OLD)),
        Message(queue="s", position="1-1", body="ünï\u2028code \"quoted\"\n".encode(), headers={"tenant": "ü"},
                properties={"body_field": None}, redelivered=False, delivery_count=0),
    ]
    for message in odd:
        assert backup_line(message) == json.dumps(message_to_json(message, pairs=True), ensure_ascii=False)
    writer = BackupWriter(tmp_path / "b.jsonl", backend="test", queue="q")
    writer.write(odd * 700)  # more than one parse batch
    writer.close()
    back = [message for _, message in BackupFile(tmp_path / "b.jsonl").messages()]
    assert [message_to_json(m, pairs=True) for m in back] == [message_to_json(m, pairs=True) for m in odd * 700]


def test_header_bytes_fast_paths_write_what_json_says() -> None:
    """Text and ints skip the general converter: the bytes must still be JSON's text of the value."""
    from qctl.codec import header_bytes

    for value in ["", "plain", "ü\u2028", 0, -7, 10**30, True, False, 1.5, [1, "x"], {"a": None}]:
        assert header_bytes(value) == (value.encode() if isinstance(value, str) else json.dumps(value).encode())
    assert header_bytes(None) == b"" and header_bytes({"$base64": "/wA="}) == b"\xff\x00"
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert [iso(moment), iso(moment), iso(moment.replace(tzinfo=None))] == ["2026-01-02T03:04:05Z"] * 3


# --- restore limits -------------------------------------------------------------------


def test_a_record_over_max_message_bytes_stops_restore_before_anything_is_published(
        request: pytest.FixtureRequest, qctl: QctlRunner, tmp_path: Path) -> None:
    kafka = backend_driver(request, "kafka")
    topic = kafka.unique("small")
    kafka.create_topic(topic, 1, {"max.message.bytes": "2048"})
    rows = [{"body": f"fits {i}", "body_encoding": "utf-8"} for i in range(5)]
    rows[3] = {"body": "x" * 4096, "body_encoding": "utf-8", "headers": {"h": "v"}}
    file = tmp_path / "big.jsonl"
    header = {"qctl_backup": 2, "backend": "kafka", "queue": topic, "created": "2026-01-01T00:00:00Z"}
    file.write_text("".join(json.dumps(line) + "\n" for line in [header, *rows]))
    run = qctl("restore", str(file), "--to", topic, "-u", kafka.url, "-o", "json")
    assert run.rc == 2, run
    error = run.err.strip().splitlines()[-1]
    assert "line 5" in error and "max.message.bytes" in error and "nothing was restored" in error, run
    assert kafka.contents(topic) == []  # checked before the first publish
    rows[3] = {"body": "x" * 1500, "body_encoding": "utf-8"}  # under the limit, with room for the record's frame
    file.write_text("".join(json.dumps(line) + "\n" for line in [header, *rows]))
    fits = qctl("restore", str(file), "--to", topic, "-u", kafka.url, "-o", "json")
    assert fits.rc == 0 and fits.json()["restored"] == 5, fits
    assert len(kafka.contents(topic)) == 5


# Runs qctl restore in this process, with every Message the reader makes counted while alive; prints the
# most alive at once, how many were made, and the process's peak RSS (VmHWM), as JSON, to argv[1].
MEASURE = textwrap.dedent("""
    import gc, json, sys
    import qctl.backup as backup
    from qctl.cli import main
    from qctl.models import Message

    out, args = sys.argv[1], sys.argv[2:]
    state = {"made": 0, "alive_max": 0}
    build = backup.message_from_json  # every line the reader turns into a Message goes through it

    def counted(row):
        state["made"] += 1
        if state["made"] % 10000 == 0:  # how many Messages exist right now, anywhere in the process
            alive = sum(1 for thing in gc.get_objects() if type(thing) is Message)
            state["alive_max"] = max(state["alive_max"], alive)
        return build(row)

    backup.message_from_json = counted
    sys.argv = ["qctl", *args]
    try:
        main()
    except SystemExit as exit:
        state["rc"] = exit.code
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    state["vm_hwm_kb"] = int(status["VmHWM"].split()[0])
    with open(out, "w") as file:
        json.dump(state, file)
""")


def measured_restore(env: dict[str, str], file: Path, url: str, queue: str, out: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(out), "restore", str(file), "--to", queue, "-u", url,
                           "-q", "-o", "json"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    state: dict[str, Any] = json.loads(out.read_text())
    assert state["rc"] in (0, None), (state, proc.stderr)
    return state


@pytest.mark.slow
def test_a_200000_line_restore_holds_a_few_chunks_and_keeps_memory_flat(
        request: pytest.FixtureRequest, clean_env: dict[str, str], tmp_path: Path) -> None:
    from qctl.commands import restore

    driver = backend_driver(request, "redis", "list")
    line = '{"body": "%s", "body_encoding": "utf-8", "headers": {"n": "%d"}, "properties": {}}\n'
    measured = {}
    for count in (20_000, 200_000):
        file = tmp_path / f"{count}.jsonl"
        with open(file, "w") as handle:
            handle.writelines(line % (f"m-{i:07d}-" + "x" * 100, i) for i in range(count))
        queue = driver.unique("flat")
        try:
            measured[count] = measured_restore(clean_env, file, driver.url, queue, tmp_path / f"{count}.json")
            assert len(driver.contents(queue)) == count
        finally:
            driver.delete(queue)
    small, big = measured[20_000], measured[200_000]
    assert big["made"] == 2 * 200_000  # every line parsed twice: validated first, then published
    bound = restore.CHUNK * (restore.MAX_CHUNKS_IN_FLIGHT + 2)  # the chunks in flight, the one being read
    assert big["alive_max"] <= bound, big
    # Ten times the lines, about the same peak: well under the 100 MB for a million lines.
    assert big["vm_hwm_kb"] - small["vm_hwm_kb"] < 16 * 1024, (small, big)
    assert big["vm_hwm_kb"] < 100 * 1024, big
