"""Behaviour every backend must show, checked on the real broker afterwards.

Each case is a pytest test that takes a ``driver`` fixture (a
:class:`qctl.testing.driver.Driver`) and runs qctl as a real process; the
driver seeds and reads the broker without qctl.  Differences between brokers
are the driver's :class:`~qctl.testing.driver.Capabilities`, never a test of
the backend's name.  Import everything from here into a test module that
defines ``driver``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import resource
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from qctl.models import Message
from qctl.testing.driver import Driver, plain
from qctl.testing.runner import QctlRunner, Run, clean_environment, interrupted, runner

STATS_FIELDS = {"backend", "queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue",
                "dead_letter_depth", "oldest_age"}
PEEK_FIELDS = {"queue", "position", "partition", "offset", "key", "headers", "properties", "body", "body_encoding",
               "timestamp", "redelivered", "delivery_count", "dead_letter"}
BODIES = [f"message {i}".encode() for i in range(5)]
# Options only some backends understand, and a command that takes them (see Adapter.understands).
BACKEND_OPTIONS = {"--group": ["redrive", "--group", "g"], "--partition": ["peek", "--partition", "0"],
                   "--via-exchange": ["redrive", "--via-exchange"],
                   "--management-url": ["redrive", "--management-url", "http://h:1"]}


@pytest.fixture()
def qctl(tmp_path: Path) -> QctlRunner:
    return runner(clean_environment(str(tmp_path / "xdg")))


def dead_letter_pair(driver: Driver) -> tuple[str, str]:
    source = driver.unique("src")
    return source, source + driver.capabilities.dlq_suffix


def rich_messages(driver: Driver) -> list[Message]:
    """Messages with what the backend can carry: headers (one named like a property), properties, keys."""
    caps = driver.capabilities
    messages = []
    for i in range(3):
        pairs: tuple[tuple[str, object], ...] = ()
        if caps.carries_headers:
            pairs = (("tenant", "acme"), ("type", f"header-{i}"), ("priority", "high"))
            if caps.repeats_headers:
                pairs += (("tenant", "second"),)
        properties = {"content_type": "text/plain", caps.id_property: f"id-{i}"} if caps.carries_properties else {}
        messages.append(Message(queue="", position="", body=f"rich {i}".encode() + b"\x00\xff",
                                key=f"k{i}".encode() if caps.carries_keys else None,
                                headers=dict(pairs), header_pairs=pairs, properties=properties))
    return messages


def assert_carried(driver: Driver, sent: list[Message], got: list[Message]) -> None:
    caps = driver.capabilities
    if not caps.ordered:  # pair them up by body (the cases' bodies are distinct)
        sent, got = sorted(sent, key=lambda m: m.body), sorted(got, key=lambda m: m.body)
    assert [m.body for m in got] == [m.body for m in sent]
    for before, after in zip(sent, got, strict=True):
        if caps.carries_headers:
            expected = [pair for pair in before.pairs()]
            kept = [pair for pair in after.pairs() if pair[0] in {name for name, _ in expected}]
            assert kept == expected if caps.repeats_headers else dict(kept) == dict(expected), (before, after)
        if caps.carries_properties:
            for name, value in before.properties.items():
                assert after.properties.get(name) == value, (name, before, after)
        if caps.carries_keys:
            assert after.key == before.key


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qctl: error: "), err
    assert "Traceback" not in err
    return lines[0]


def same(driver: Driver, got: list[bytes], expected: list[bytes]) -> bool:
    """``got == expected``; where the broker keeps no order (``ordered`` False), the same messages in any order."""
    return got == expected if driver.capabilities.ordered else Counter(got) == Counter(expected)


def leading(driver: Driver, got: list[bytes], whole: list[bytes]) -> bool:
    """``got`` is how ``whole`` starts; where the broker keeps no order, some of ``whole``'s messages."""
    return got == whole[:len(got)] if driver.capabilities.ordered else not Counter(got) - Counter(whole)


def refuses_redrive(driver: Driver, qctl: QctlRunner, *options: str) -> bool:
    """On a broker without dead letters (``dead_letters`` False): redrive, with these options, exits 2 with one
    line and leaves a queue exactly as it was.  Returns False where there are dead letters to test instead."""
    if driver.capabilities.dead_letters:
        return False
    name = driver.unique("no-dlq")
    driver.make_queue(name, plain(BODIES))
    run = qctl("redrive", "-u", driver.url, *options, name)
    assert run.rc == 2, run
    one_error_line(run.err)
    assert same(driver, driver.contents(name), BODIES)
    return True


# --- stats -------------------------------------------------------------------


def test_stats_row_for_a_named_queue(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("stats")
    driver.make_queue(name, plain(BODIES))
    run = qctl("stats", "-u", driver.url, "-o", "json", name)
    assert run.rc == 0, run
    rows = run.json()
    assert len(rows) == 1, run
    row = rows[0]
    assert set(row) >= STATS_FIELDS
    caps = driver.capabilities
    assert (row["backend"], row["queue"], row["type"], row["depth"]) == (caps.backend, name, caps.queue_type, 5)
    assert row["oldest_age"] is None or 0 <= row["oldest_age"] < 3600


def test_stats_globs_and_listing_everything(driver: Driver, qctl: QctlRunner) -> None:
    if not driver.capabilities.stats_lists_queues:
        _stats_of_filters(driver, qctl)
        return
    prefix = driver.unique("glob")
    for suffix, count in (("a", 1), ("b", 2)):  # "-", not ".": SQS takes no "." in a standard queue's name
        driver.make_queue(f"{prefix}-{suffix}", plain(BODIES[:count]))
    run = qctl("stats", "-u", driver.url, "-o", "jsonl", f"{prefix}-*")
    assert run.rc == 0, run
    assert {(r["queue"], r["depth"]) for r in run.jsonl()} == {(f"{prefix}-a", 1), (f"{prefix}-b", 2)}
    everything = qctl("stats", "-u", driver.url, "-o", "json")
    assert everything.rc == 0, everything
    assert {f"{prefix}-a", f"{prefix}-b"} <= {r["queue"] for r in everything.json()}
    nothing = qctl("stats", "-u", driver.url, "-o", "json", f"{prefix}-no-such-*")
    assert (nothing.rc, nothing.json()) == (0, [])


def _stats_of_filters(driver: Driver, qctl: QctlRunner) -> None:
    """Where a QUEUE is a filter (MQTT): a row per filter asked for, the broker's row alone, depth 0 for none."""
    first, second = driver.unique("filter-a"), driver.unique("filter-b")
    driver.make_queue(first, plain(BODIES[:1]))
    driver.make_queue(second, plain(BODIES[:2]))
    run = qctl("stats", "-u", driver.url, "-o", "jsonl", first, second)
    assert run.rc == 0, run
    assert [(r["queue"], r["depth"]) for r in run.jsonl()] == [(first, 1), (second, 2)]
    everything = qctl("stats", "-u", driver.url, "-o", "json")
    assert everything.rc == 0, everything
    rows = everything.json()
    assert rows and all(set(r) >= STATS_FIELDS and r["backend"] == driver.capabilities.backend for r in rows)
    assert {first, second}.isdisjoint(r["queue"] for r in rows)
    nothing = qctl("stats", "-u", driver.url, "-o", "json", driver.unique("no-such"))
    assert nothing.rc == 0 and [r["depth"] for r in nothing.json()] == [0], nothing


def test_stats_thresholds_and_prometheus(driver: Driver, qctl: QctlRunner) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    name = driver.unique("thr")
    driver.make_queue(name, plain(BODIES[:3]))
    assert qctl("stats", "-u", driver.url, "--fail-above", "3", name).rc == 0
    crossed = qctl("stats", "-u", driver.url, "--fail-above", "2", name)
    assert crossed.rc == 5, crossed
    assert name in one_error_line(crossed.err)
    prom = qctl("stats", "-u", driver.url, "-o", "prom", name)
    assert prom.rc == 0, prom
    samples = {(s.name, s.labels["queue"], s.labels["backend"]): s.value
               for family in text_string_to_metric_families(prom.out) for s in family.samples}
    assert samples[("qctl_queue_depth", name, driver.capabilities.backend)] == 3


# --- peek ------------------------------------------------------------------------


def test_peek_shows_messages_in_order_and_changes_nothing(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("peek")
    driver.make_queue(name, plain(BODIES))
    run = qctl("peek", "-u", driver.url, "-n", "3", "-o", "jsonl", name)
    assert run.rc == 0, run
    rows = run.jsonl()
    shown = [r["body"].encode() for r in rows]
    assert len(shown) == 3 and leading(driver, shown, BODIES), rows
    assert all(set(r) >= PEEK_FIELDS and r["body_encoding"] == "utf-8" and r["queue"] == name for r in rows)
    assert same(driver, driver.contents(name), BODIES)
    again = qctl("peek", "-u", driver.url, "-o", "json", name)
    assert same(driver, [r["body"].encode() for r in again.json()], BODIES), again
    assert same(driver, driver.contents(name), BODIES)


def test_peek_binary_bodies_come_out_base64(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("bin")
    raw = b"\xff\xfe\x00\x01 not utf-8"
    driver.make_queue(name, plain([raw]))
    row = qctl("peek", "-u", driver.url, "-o", "json", name).json()[0]
    assert row["body_encoding"] == "base64"
    assert base64.b64decode(row["body"]) == raw


def test_peek_where_finds_matches_and_says_when_it_stopped(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("where")
    driver.make_queue(name, plain(BODIES))
    run = qctl("peek", "-u", driver.url, "-o", "json", name, "--where", "body == 'message 3' || body == 'message 1'")
    assert run.rc == 0, run
    assert same(driver, [r["body"].encode() for r in run.json()], [b"message 1", b"message 3"]), run
    short = qctl("peek", "-u", driver.url, "-o", "json", name, "--where", "body == 'message 4'", "--scan-limit", "2")
    # The first two: none of them is message 4 (where no order is kept, any two, so at most it).
    assert short.rc == 0 and [r["body"] for r in short.json()] in ([], [] if driver.capabilities.ordered
                                                                    else ["message 4"]), short
    assert "--scan-limit" in short.err
    bad = qctl("peek", "-u", driver.url, name, "--where", "body ==")
    assert bad.rc == 2 and "--where" in one_error_line(bad.err)
    assert same(driver, driver.contents(name), BODIES)


def test_table_output_escapes_control_characters(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("esc")
    body = b"\x1b[31mred\x07bell"
    driver.make_queue(name, plain([body]))
    table = qctl("peek", "-u", driver.url, name)
    assert table.rc == 0, table
    assert "\x1b" not in table.out and "\x07" not in table.out and "\\x1b[31mred\\x07bell" in table.out
    assert qctl("peek", "-u", driver.url, "-o", "json", name).json()[0]["body"] == body.decode()
    lines = qctl("peek", "-u", driver.url, "-o", "jsonl", name)
    assert lines.rc == 0 and json.loads(lines.out.splitlines()[0])["body"] == body.decode(), lines
    rows = qctl("peek", "-u", driver.url, "-o", "csv", name)
    assert rows.rc == 0, rows
    header, first = list(csv.reader(io.StringIO(rows.out)))[:2]
    assert first[header.index("body")] == body.decode(), rows  # exact, as json has it


# --- purge, backup and restore ------------------------------------------------


def test_purge_without_yes_and_without_terminal_refuses(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("refuse")
    driver.make_queue(name, plain(BODIES))
    run = qctl("purge", "-u", driver.url, name)
    assert run.rc == 2 and "--yes" in one_error_line(run.err), run
    assert same(driver, driver.contents(name), BODIES)


def test_purge_dry_run_changes_nothing(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("dry")
    driver.make_queue(name, plain(BODIES))
    run = qctl("purge", "-u", driver.url, "--dry-run", "-o", "json", name)
    assert run.rc == 0 and run.json()["purged"] == 5, run
    assert same(driver, driver.contents(name), BODIES)


def test_purge_empties_the_queue(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("purge")
    driver.make_queue(name, plain(BODIES))
    run = qctl("purge", "-u", driver.url, "--yes", "-o", "json", name)
    assert run.rc == 0, run
    assert run.json() == {"queue": name, "purged": 5, "backup": None}
    assert driver.contents(name) == []
    assert qctl("stats", "-u", driver.url, "-o", "json", name).json()[0]["depth"] == 0


def test_purge_backup_then_restore_round_trips_exactly(driver: Driver, qctl: QctlRunner, tmp_path: Path) -> None:
    name = driver.unique("backup")
    sent = [*rich_messages(driver), *plain([b"\x00\xffbinary"])]
    driver.make_queue(name, sent)
    backup = tmp_path / "backup.jsonl"
    run = qctl("purge", "-u", driver.url, "--yes", "--backup", str(backup), "-o", "json", name)
    assert run.rc == 0, run
    assert run.json() == {"queue": name, "purged": 4, "backup": str(backup)}
    header, *lines = [json.loads(line) for line in backup.read_text().splitlines()]
    assert header["qctl_backup"] == 2 and header["queue"] == name and header["backend"] == driver.capabilities.backend
    assert len(lines) == 4 and all("header_pairs" in line for line in lines)
    assert driver.contents(name) == []
    restored = qctl("restore", str(backup), "--to", name, "-u", driver.url, "-o", "json")
    assert restored.rc == 0, restored
    assert restored.json()["restored"] == 4
    assert_carried(driver, sent, driver.messages(name))


def test_backup_copies_and_changes_nothing(driver: Driver, qctl: QctlRunner, tmp_path: Path) -> None:
    name = driver.unique("copy")
    driver.make_queue(name, plain(BODIES))
    file = tmp_path / "copy.jsonl"
    run = qctl("backup", name, str(file), "-u", driver.url, "-o", "json", "--where", "body != 'message 2'")
    assert run.rc == 0, run
    assert run.json()["backed_up"] == 4
    assert same(driver, [json.loads(line)["body"].encode() for line in file.read_text().splitlines()[1:]],
                [b"message 0", b"message 1", b"message 3", b"message 4"])
    assert same(driver, driver.contents(name), BODIES)
    again = qctl("backup", name, str(file), "-u", driver.url)
    assert again.rc == 2 and "already exists" in one_error_line(again.err)


def test_purge_where_deletes_only_the_selected(driver: Driver, qctl: QctlRunner, tmp_path: Path) -> None:
    name = driver.unique("pwhere")
    driver.make_queue(name, plain(BODIES))
    backup = tmp_path / "selected.jsonl"
    run = qctl("purge", "-u", driver.url, name, "--yes", "--where", "body == 'message 1' || body == 'message 3'",
               "--backup", str(backup), "-o", "json")
    if not driver.capabilities.deletes_singly:
        assert run.rc == 2, run
        assert same(driver, driver.contents(name), BODIES)
        return
    assert run.rc == 0, run
    assert (run.json()["purged"], run.json()["kept"]) == (2, 3)
    assert same(driver, driver.contents(name), [BODIES[0], BODIES[2], BODIES[4]])  # the others, in place and in order
    assert same(driver, [json.loads(line)["body"].encode() for line in backup.read_text().splitlines()[1:]],
                [b"message 1", b"message 3"])


def test_restore_checks_every_line_first_and_resumes_with_skip(driver: Driver, qctl: QctlRunner,
                                                              tmp_path: Path) -> None:
    name = driver.unique("restore")
    rows = [{"body": f"r{i}", "body_encoding": "utf-8"} for i in range(4)]
    if not driver.capabilities.restores_bare_rows:  # lines as a peek writes them: where each message lives
        driver.make_queue(name, plain([row["body"].encode() for row in rows]))
        rows = qctl("peek", "-u", driver.url, "-o", "jsonl", name).jsonl()
        assert [row["body"] for row in rows] == ["r0", "r1", "r2", "r3"]
    driver.make_queue(name, [])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(rows[0]), json.dumps(rows[1]),
                              json.dumps({"body": "!!", "body_encoding": "base64"}), json.dumps(rows[2])]) + "\n")
    run = qctl("restore", str(bad), "--to", name, "-u", driver.url)
    assert run.rc == 2 and "line 3" in one_error_line(run.err), run
    assert driver.contents(name) == []  # nothing published before the bad line was found
    for broken, needle in (('{"headers": {}}', "body"), ('{"body": "x", "body_encoding": "rot13"}', "rot13"),
                           ("not json", "not JSON")):
        file = tmp_path / f"broken-{len(needle)}.jsonl"
        file.write_text(json.dumps(rows[0]) + "\n" + broken + "\n")
        failed = qctl("restore", str(file), "--to", name, "-u", driver.url)
        assert failed.rc == 2 and "line 2" in failed.err and needle in one_error_line(failed.err), failed
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(row) + "\n" for row in rows))
    resumed = qctl("restore", str(good), "--to", name, "-u", driver.url, "--skip", "2", "-o", "json")
    assert resumed.rc == 0 and resumed.json()["restored"] == 2 and resumed.json()["resume_skip"] == 4, resumed
    assert same(driver, driver.contents(name), [b"r2", b"r3"])


def test_backup_write_errors_are_exit_2_and_delete_only_what_was_written(driver: Driver, qctl: QctlRunner,
                                                                         tmp_path: Path) -> None:
    name = driver.unique("full")
    bodies = [b"x" * 200 + b"%05d" % i for i in range(20_000)]  # ~10 MB of backup lines, in chunks of ~1-3 MB
    driver.make_queue(name, plain(bodies))
    missing_dir = qctl("purge", "-u", driver.url, name, "--yes", "--backup", str(tmp_path / "no" / "such" / "f"))
    assert missing_dir.rc == 2 and "no/such/f" in one_error_line(missing_dir.err)
    assert len(driver.contents(name)) == len(bodies)
    # A file-size limit makes the disk "full" after 6 MB: purge stops there and deletes only what it wrote.
    file = tmp_path / "limited.jsonl"
    env = clean_environment(str(tmp_path / "xdg"))
    limited = _run_with_file_limit(env, ["purge", "-u", driver.url, name, "--yes", "--backup", str(file)], 6 << 20)
    assert limited.rc == 2, limited
    line = one_error_line(limited.err)
    assert str(file) in line and "safely in it" in line
    written = [json.loads(text)["body"].encode() for text in file.read_text().splitlines()[1:]]
    assert 0 < len(written) < len(bodies) and leading(driver, written, bodies)
    left = driver.contents(name)
    if driver.capabilities.keeps_settled:
        return  # Kafka deletes up to an offset at the end; what was written is what may go
    assert same(driver, written + left, bodies)  # every message in the file or still in the queue, none lost


def _run_with_file_limit(env: dict[str, str], args: list[str], limit: int) -> Run:
    import subprocess
    import sys

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "qctl", *args], env=env, capture_output=True, text=True,
                          preexec_fn=cap, timeout=120, stdin=subprocess.DEVNULL)
    return Run(args, proc.returncode, proc.stdout, proc.stderr)


# --- redrive -------------------------------------------------------------------


def test_redrive_moves_dead_letters_back_to_their_source(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl) or refuses_redrive(driver, qctl, "--dry-run"):
        return
    source, dlq = dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES)
    dry = qctl("redrive", "-u", driver.url, "--dry-run", "-o", "json", dlq)
    assert dry.rc == 0, dry
    assert (dry.json()["targets"], dry.json()["moved"]) == ({source: 5}, 0)
    assert same(driver, driver.contents(dlq), BODIES) and driver.contents(source) == []
    run = qctl("redrive", "-u", driver.url, "-o", "json", dlq)
    assert run.rc == 0, run
    assert run.json() == {"source": dlq, "moved": 5, "skipped": 0, "failed": 0, "targets": {source: 5}}
    assert same(driver, driver.contents(source), BODIES)
    if not driver.capabilities.keeps_settled:
        assert driver.contents(dlq) == []
    again = qctl("redrive", "-u", driver.url, "-o", "json", dlq)
    assert (again.rc, again.json()["moved"]) == (0, 0), again
    assert same(driver, driver.contents(source), BODIES)


def test_redrive_to_with_limit_counts_moved_messages(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl, "--to", driver.unique("other"), "--limit", "2"):
        return
    source, dlq = dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES)
    other = driver.unique("other")
    driver.make_queue(other, [])
    run = qctl("redrive", "-u", driver.url, "--to", other, "--limit", "2", "-o", "json", dlq)
    assert run.rc == 0, run
    assert run.json()["moved"] == 2 and run.json()["targets"] == {other: 2}
    first = driver.contents(other)
    assert len(first) == 2 and leading(driver, first, BODIES)
    assert driver.contents(source) == []
    if not driver.capabilities.keeps_settled:
        assert same(driver, first + driver.contents(dlq), BODIES)
    # --limit counts moved messages even when some are skipped on the way.
    more = qctl("redrive", "-u", driver.url, "--to", other, "--limit", "2", "--where", "body != 'message 2'",
                "-o", "json", dlq)
    assert more.json()["moved"] == 2, more
    now = driver.contents(other)
    if driver.capabilities.ordered:
        assert now == [*BODIES[:2], BODIES[3], BODIES[4]]
    else:  # any two more, but not message 2 unless the first run took it
        assert len(now) == 4 and leading(driver, now, BODIES) and (b"message 2" in first or b"message 2" not in now)


def test_redrive_to_the_dlq_itself_or_a_missing_queue_moves_nothing(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl, "--to", driver.unique("nowhere")):
        return
    source, dlq = dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES)
    itself = qctl("redrive", "-u", driver.url, "--to", dlq, dlq)
    assert itself.rc == 2 and "itself" in one_error_line(itself.err), itself
    if not driver.capabilities.missing_queue_is_empty:
        missing = qctl("redrive", "-u", driver.url, "--to", driver.unique("nowhere"), dlq)
        assert missing.rc == 4, missing
    assert same(driver, driver.contents(dlq), BODIES) and driver.contents(source) == []


def test_redrive_counts_redrives_and_max_redrives_leaves_poison_in_place(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl, "--max-redrives", "2"):
        return
    source, dlq = dead_letter_pair(driver)
    driver.make_dead_letters(source, dlq, BODIES[:2])
    counts = driver.capabilities.counts_redrives
    if not (driver.capabilities.carries_headers if counts is None else counts):
        # Bare bodies have nowhere to keep the count: --max-redrives is refused before anything moves (a
        # plain Redis list), or the messages move with a notice that the count could not be kept on them.
        run = qctl("redrive", "-u", driver.url, dlq, "--to", source, "--max-redrives", "2")
        if run.rc == 2:
            assert "--max-redrives" in one_error_line(run.err), run
            assert same(driver, driver.contents(dlq), BODIES[:2])
        else:
            assert "--max-redrives" in run.err, run  # never silently ignored
        return
    assert qctl("redrive", "-u", driver.url, dlq, "--to", source).rc == 0
    first = driver.messages(source)
    assert [m.headers.get("x-qctl-redrive-count") in (1, "1") for m in first] == [True, True]
    other = driver.unique("again")
    driver.make_queue(other, [])
    back = qctl("redrive", "-u", driver.url, source, "--to", other, "-o", "json")
    assert back.rc == 0 and back.json()["moved"] == 2, back
    assert [m.headers.get("x-qctl-redrive-count") in (2, "2") for m in driver.messages(other)] == [True, True]
    poison = qctl("redrive", "-u", driver.url, other, "--to", source, "--max-redrives", "2", "-o", "json")
    assert poison.rc == 6 and poison.json()["skipped"] == 2 and poison.json()["moved"] == 0, poison
    if not driver.capabilities.keeps_settled:
        assert same(driver, driver.contents(other), BODIES[:2])


def test_redrive_keeps_headers_properties_and_keys(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl, "--to", driver.unique("keep-target")):
        return
    dlq = driver.unique("keep") + driver.capabilities.dlq_suffix
    target = driver.unique("keep-target")
    sent = rich_messages(driver)
    driver.make_queue(dlq, sent)
    driver.make_queue(target, [])
    run = qctl("redrive", "-u", driver.url, dlq, "--to", target, "-o", "json")
    assert run.rc == 0 and run.json()["moved"] == 3, run
    assert_carried(driver, sent, driver.messages(target))


def test_redrive_where_moves_the_selected_and_leaves_the_others_in_order(driver: Driver, qctl: QctlRunner) -> None:
    if refuses_redrive(driver, qctl, "--where", "body == 'message 1'"):
        return
    source, dlq = dead_letter_pair(driver)
    bodies = [f"w{i}".encode() for i in range(12)]
    driver.make_dead_letters(source, dlq, bodies)
    run = qctl("redrive", "-u", driver.url, dlq, "--where", "contains(['w1', 'w4', 'w9'], body)", "-o", "json")
    assert run.rc == 0, run  # not selecting is not partial
    assert (run.json()["moved"], run.json()["skipped"]) == (3, 9)
    assert same(driver, driver.contents(source), [b"w1", b"w4", b"w9"])
    if not driver.capabilities.keeps_settled:
        assert same(driver, driver.contents(dlq), [body for body in bodies if body not in (b"w1", b"w4", b"w9")])


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_redrive_gracefully_and_a_rerun_moves_the_rest(driver: Driver, tmp_path: Path,
                                                                      signal_number: int, code: int) -> None:
    if refuses_redrive(driver, runner(clean_environment(str(tmp_path / "xdg"))), "--rate", "300"):
        return
    source, dlq = dead_letter_pair(driver)
    bodies = [b"sig-%05d" % i for i in range(1500)]
    driver.make_dead_letters(source, dlq, bodies)
    env = clean_environment(str(tmp_path / "xdg"))
    args = ["redrive", "-u", driver.url, dlq, "--rate", "300", "-o", "json"]
    stopped = interrupted(env, args, lambda: len(driver.contents(source)) >= 100, signal_number=signal_number)
    assert stopped.rc == code, stopped
    result = json.loads(stopped.out)
    moved = driver.contents(source)
    assert 100 <= result["moved"] == len(moved) < len(bodies)  # the chunk in flight was settled and counted
    assert leading(driver, moved, bodies)
    assert "nothing was lost" in stopped.err
    if not driver.capabilities.keeps_settled:
        assert same(driver, moved + driver.contents(dlq), bodies)
    rerun = runner(env)("redrive", "-u", driver.url, dlq, "-o", "json", timeout=300)
    assert rerun.rc == 0 and rerun.json()["moved"] == len(bodies) - len(moved), rerun
    assert same(driver, driver.contents(source), bodies)


# --- reading never counts against a limit ---------------------------------------------


def test_reading_never_counts_against_a_delivery_limit(driver: Driver, qctl: QctlRunner) -> None:
    if not driver.capabilities.has_read_limits:
        pytest.skip("this broker counts no reads")
    name = driver.unique("limited")
    bodies = [f"lim{i}".encode() for i in range(6)]
    url = driver.make_limited_queue(name, bodies, 1)
    for _ in range(2):
        peek = qctl("peek", "-u", url, name)
        assert peek.rc == 2 and "limit" in one_error_line(peek.err), peek
        dry = qctl("redrive", "-u", url, name, "--dry-run")
        assert dry.rc == 2 and "limit" in one_error_line(dry.err), dry
    other = driver.unique("limited-out")
    driver.make_queue(other, [])
    counted = qctl("redrive", "-u", url, name, "--to", other, "--dry-run", "-o", "json")
    assert counted.rc == 0 and counted.json()["targets"] == {other: 6}, counted
    assert Counter(driver.contents(name)) == Counter(bodies)  # nothing dropped by any of the above
    for _ in range(2):  # skipped messages are copied to the tail, never returned: none crosses the limit
        run = qctl("redrive", "-u", url, name, "--to", other, "--where", "body == 'lim0'", "-o", "json")
        assert run.rc == 0, run
    assert same(driver, driver.contents(other), [b"lim0"])
    assert Counter(driver.contents(name)) == Counter(bodies[1:])


# --- errors ---------------------------------------------------------------------


def test_missing_queue(driver: Driver, qctl: QctlRunner) -> None:
    name = driver.unique("missing")
    run = qctl("peek", "-u", driver.url, "-o", "json", name)
    if driver.capabilities.missing_queue_is_empty:
        assert (run.rc, run.json()) == (0, [])
        return
    assert run.rc == 4 and name in one_error_line(run.err), run
    assert qctl("stats", "-u", driver.url, name).rc == 4


def test_wrong_password_exits_3_without_showing_it(driver: Driver, qctl: QctlRunner) -> None:
    run = qctl("stats", "-u", driver.bad_password_url(), "--timeout", "5", "anything")
    if driver.capabilities.checks_credentials:  # else (ElasticMQ takes any): it gets on, "anything" is not found
        assert run.rc == 3, run
    one_error_line(run.err)
    assert "wrong-password" not in run.out + run.err


def test_unreachable_broker_exits_3_within_timeout(driver: Driver, qctl: QctlRunner) -> None:
    started = time.monotonic()
    run = qctl("stats", "-u", driver.unreachable_url(), "--timeout", "3", "anything")
    elapsed = time.monotonic() - started
    assert run.rc == 3, run
    one_error_line(run.err)
    assert elapsed < 3 + 5, f"took {elapsed:.1f}s"


def test_options_of_other_backends_are_refused(driver: Driver, qctl: QctlRunner) -> None:
    from qctl import registry
    from qctl.urls import parse

    understood = registry.adapter_class(parse(driver.url).scheme).understands
    name = driver.unique("opts")
    driver.make_queue(name, plain(BODIES[:1]))
    foreign = [args for option, args in BACKEND_OPTIONS.items() if option not in understood]
    assert foreign, "every backend-specific option applies here?"
    for command, option, *value in foreign:
        run = qctl(command, "-u", driver.url, name, option, *value)
        assert run.rc == 2 and f"{option} does not apply" in one_error_line(run.err), run
    assert same(driver, driver.contents(name), BODIES[:1])


def test_a_second_signal_stops_at_once_and_loses_nothing(driver: Driver, tmp_path: Path) -> None:
    if refuses_redrive(driver, runner(clean_environment(str(tmp_path / "xdg"))), "--rate", "50"):
        return
    source, dlq = dead_letter_pair(driver)
    bodies = [b"twice-%05d" % i for i in range(600)]
    driver.make_dead_letters(source, dlq, bodies)
    env = clean_environment(str(tmp_path / "xdg"))
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "qctl", "redrive", "-u", driver.url, dlq, "--rate", "50"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(driver.contents(source)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "at once" in err or "nothing was lost" in err
    moved = driver.contents(source)
    left = [] if driver.capabilities.keeps_settled else driver.contents(dlq)
    if driver.capabilities.keeps_settled:
        assert set(moved) <= set(bodies)
    else:
        assert set(moved) | set(left) == set(bodies) and len(moved) + len(left) >= len(bodies)  # both is safe
    rerun = runner(env)("redrive", "-u", driver.url, dlq, "-o", "json", timeout=300)
    assert rerun.rc == 0, rerun
    assert set(driver.contents(source)) == set(bodies)


def test_a_signal_stops_purge_with_backup_and_restore_resumably(driver: Driver, tmp_path: Path) -> None:
    name = driver.unique("sigpurge")
    bodies = [b"p" * 300 + b"%06d" % i for i in range(60_000)]
    driver.make_queue(name, plain(bodies))
    env = clean_environment(str(tmp_path / "xdg"))
    backup = tmp_path / "stopped.jsonl"
    stopped = interrupted(env, ["purge", "-u", driver.url, name, "--yes", "--backup", str(backup), "-o", "json"],
                          lambda: backup.exists() and backup.stat().st_size > 2_000_000, signal_number=signal.SIGTERM)
    assert stopped.rc == 143, stopped  # SIGTERM here, SIGINT for the restore below: both, without a second run
    purged = json.loads(stopped.out)["purged"]
    written = [json.loads(text)["body"].encode() for text in backup.read_text().splitlines()[1:]]
    assert 0 < purged == len(written) < len(bodies) and leading(driver, written, bodies)
    if not driver.capabilities.keeps_settled:
        assert same(driver, written + driver.contents(name), bodies)  # the rest still waits, in order
    target = driver.unique("sigrestore")
    driver.make_queue(target, [])
    half = interrupted(env, ["restore", str(backup), "--to", target, "-u", driver.url, "-o", "json", "--rate",
                             str(max(100, len(written) // 8))], lambda: len(driver.contents(target)) > 0)
    assert half.rc == 130, half
    skip = json.loads(half.out)["resume_skip"]
    assert f"--skip {skip}" in half.err
    assert same(driver, driver.contents(target), written[:skip])
    rest = runner(env)("restore", str(backup), "--to", target, "-u", driver.url, "--skip", str(skip), "-o", "json")
    assert rest.rc == 0 and rest.json()["restored"] == len(written) - skip, rest
    assert same(driver, driver.contents(target), written)
