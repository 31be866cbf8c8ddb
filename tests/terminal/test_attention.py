"""Attention styles in ``qctl stats`` on a real terminal (tmux, ``capture-pane -e`` keeps the colours):
a dead-letter queue holding messages is bold red, lag over ``--fail-lag-above`` is bold red (any lag is
yellow without a threshold); under ``NO_COLOR``, and off a terminal, the output is plain, byte for byte."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from qctl import output, present
from qctl.commands.stats import COLUMNS
from tests.conftest import QctlRunner
from tests.terminal.conftest import REPO, Tmux

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def painted(raw: str) -> tuple[str, list[frozenset[str]]]:
    """A captured line without its escapes, and the SGR codes in force at each of its characters
    ("1" bold, "31" red, "33" yellow)."""
    text, codes, current = [], [], set[str]()
    at = 0
    for match in SGR.finditer(raw):
        for char in raw[at:match.start()]:
            text.append(char)
            codes.append(frozenset(current))
        for param in (match.group(1) or "0").split(";"):
            if param in ("0", ""):
                current.clear()
            elif param in ("39", "49"):  # default foreground / background
                current -= {code for code in current if len(code) == 2 and code[0] == param[0]}
            elif param == "22":
                current -= {"1", "2"}
            else:
                current.add(param)
        at = match.end()
    for char in raw[at:]:
        text.append(char)
        codes.append(frozenset(current))
    return "".join(text), codes


def cell_style(row: str, column: str) -> tuple[str, set[str]]:
    """The text of the stats table's ``column`` in ``row``, and the codes at its first character."""
    shown, codes = painted(row)
    start = [index for index, char in enumerate(shown) if char == "│"][COLUMNS.index(column)] + 1
    end = shown.index("│", start)
    first = next(index for index in range(start, end) if shown[index] != " ")
    return shown[start:end].strip(), set(codes[first])


def row_of(screen: str, queue: str) -> str:
    """The raw (escaped) line of the table whose QUEUE cell is ``queue``."""
    for line in screen.splitlines():
        cells = SGR.sub("", line).split("│")
        if len(cells) > 2 and cells[1].strip() == queue:
            return line
    raise AssertionError(f"no row for {queue!r}:\n{screen}")


@pytest.fixture()
def dead_letters(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    """``P-orders`` (2 messages) whose DLQ ``P-orders:dlq`` holds 1, and ``P-pay`` with no dead letters."""
    client = redis.Redis.from_url(redis_url)
    prefix = f"att{uuid.uuid4().hex[:6]}"
    client.lpush(f"{prefix}-orders", b"a", b"b")
    client.lpush(f"{prefix}-orders:dlq", b"dead")
    client.lpush(f"{prefix}-pay", b"c")
    yield prefix, client
    client.delete(f"{prefix}-orders", f"{prefix}-orders:dlq", f"{prefix}-pay")


def test_a_dlq_holding_messages_is_bold_red(tmux: Tmux, redis_url: str,
                                            dead_letters: tuple[str, redis.Redis]) -> None:
    prefix, _ = dead_letters
    tmux.start("stats", "-u", redis_url, f"{prefix}-*")
    tmux.wait_for(lambda s: "EXIT=" in s)
    screen = tmux.screen(escapes=True)
    assert "EXIT=0" in screen, screen
    dlq_row = row_of(screen, f"{prefix}-orders:dlq")
    assert cell_style(dlq_row, "queue") == (f"{prefix}-orders:dlq", {"1", "31"}), repr(dlq_row)  # the DLQ
    assert cell_style(dlq_row, "depth") == ("1", {"1", "31"}), repr(dlq_row)  # and its depth
    assert cell_style(dlq_row, "type") == ("list", set()), repr(dlq_row)
    orders_row = row_of(screen, f"{prefix}-orders")
    assert cell_style(orders_row, "queue") == (f"{prefix}-orders", set()), repr(orders_row)  # the queue: plain,
    assert cell_style(orders_row, "depth") == ("2", set()), repr(orders_row)  # its depth too (not a DLQ),
    assert cell_style(orders_row, "dead_letter_queue") == (f"{prefix}-orders:dlq", {"1", "31"}), repr(orders_row)
    assert cell_style(orders_row, "dead_letter_depth") == ("1", {"1", "31"}), repr(orders_row)  # its DLQ's: red
    pay_row = row_of(screen, f"{prefix}-pay")
    assert not SGR.search(pay_row), repr(pay_row)  # nothing to see: no style at all


def test_no_color_keeps_the_terminal_table_plain(tmux: Tmux, redis_url: str,
                                                 dead_letters: tuple[str, redis.Redis]) -> None:
    prefix, _ = dead_letters
    tmux.env["NO_COLOR"] = "1"
    tmux.start("stats", "-u", redis_url, f"{prefix}-*", "--fail-above", "0")
    tmux.wait_for(lambda s: "EXIT=" in s)
    screen = tmux.screen(escapes=True)
    assert "EXIT=5" in screen and f"{prefix}-orders:dlq" in screen and "┃" in screen, screen  # rich, no colour
    assert "\x1b[" not in screen, repr(screen)  # not even bold (rich's no_color keeps bold: it is never asked)


def test_a_rabbitmq_dlq_found_through_its_arguments_is_bold_red(tmux: Tmux, rabbitmq_driver: Any,
                                                                qctl: QctlRunner) -> None:
    # The DLQ's name follows no convention: it is one because the source queue's x-dead-letter-routing-key
    # names it, and the table must still see it as one.
    source = rabbitmq_driver.unique("tty-att")
    parked = source + "-parked"
    rabbitmq_driver.make_dead_letters(source, parked, [b"one", b"two"])
    try:
        deadline = time.monotonic() + 30  # the management API's figures lag the queue by a few seconds
        while time.monotonic() < deadline:
            rows = {row["queue"]: row for row in qctl("stats", "-u", rabbitmq_driver.url, f"{source}*",
                                                       "-o", "json").json()}
            if rows.get(parked, {}).get("depth") == 2 and rows.get(source, {}).get("dead_letter_depth") == 2:
                break
            time.sleep(0.5)
        tmux.start("stats", "-u", rabbitmq_driver.url, f"{source}*")
        tmux.wait_for(lambda s: "EXIT=" in s)
        screen = tmux.screen(escapes=True)
        parked_row = row_of(screen, parked)
        assert cell_style(parked_row, "queue") == (parked, {"1", "31"}), repr(parked_row)
        assert cell_style(parked_row, "depth") == ("2", {"1", "31"}), repr(parked_row)
        source_row = row_of(screen, source)
        assert cell_style(source_row, "queue") == (source, set()), repr(source_row)
        assert cell_style(source_row, "dead_letter_queue") == (parked, {"1", "31"}), repr(source_row)
        assert cell_style(source_row, "dead_letter_depth") == ("2", {"1", "31"}), repr(source_row)
    finally:
        rabbitmq_driver.delete(source)
        rabbitmq_driver.delete(parked)


@pytest.fixture()
def lagging(redis_url: str) -> Iterator[tuple[str, redis.Redis]]:
    """Two streams with a consumer group that has read nothing: ``P-far`` lags 5, ``P-near`` lags 1."""
    client = redis.Redis.from_url(redis_url)
    prefix = f"lag{uuid.uuid4().hex[:6]}"
    for name, count in ((f"{prefix}-far", 5), (f"{prefix}-near", 1)):
        for index in range(count):
            client.xadd(name, {"body": f"m{index}"})
        client.xgroup_create(name, "workers", id="0")
    yield prefix, client
    client.delete(f"{prefix}-far", f"{prefix}-near")


def test_lag_over_the_threshold_is_bold_red_and_under_it_plain(tmux: Tmux, redis_url: str,
                                                                lagging: tuple[str, redis.Redis]) -> None:
    prefix, _ = lagging
    tmux.start("stats", "-u", redis_url, f"{prefix}-*", "--fail-lag-above", "2")
    tmux.wait_for(lambda s: "EXIT=" in s)
    screen = tmux.screen(escapes=True)
    assert "EXIT=5" in screen, screen
    far, near = row_of(screen, f"{prefix}-far"), row_of(screen, f"{prefix}-near")
    assert cell_style(far, "lag") == ("5", {"1", "31"}), repr(far)
    assert cell_style(near, "lag") == ("1", set()), repr(near)  # within what the operator allowed
    assert not SGR.search(near), repr(near)


def test_without_a_threshold_any_lag_is_yellow(tmux: Tmux, redis_url: str,
                                               lagging: tuple[str, redis.Redis]) -> None:
    prefix, _ = lagging
    tmux.start("stats", "-u", redis_url, f"{prefix}-*")
    tmux.wait_for(lambda s: "EXIT=" in s)
    screen = tmux.screen(escapes=True)
    far, near = row_of(screen, f"{prefix}-far"), row_of(screen, f"{prefix}-near")
    assert cell_style(far, "lag") == ("5", {"33"}) and cell_style(near, "lag") == ("1", {"33"}), (far, near)
    assert cell_style(far, "queue") == (f"{prefix}-far", set()), repr(far)  # a stream, not a DLQ


def test_off_a_terminal_the_table_is_byte_for_byte_the_plain_one(redis_url: str, clean_env: dict[str, str],
                                                                  dead_letters: tuple[str, redis.Redis]) -> None:
    prefix, _ = dead_letters
    env = {key: value for key, value in clean_env.items() if key != "NO_COLOR"}  # plain because of the pipe
    env["TERM"] = "xterm-256color"

    def stats(*extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "qctl", "stats", "-u", redis_url, f"{prefix}-*", *extra],
                              capture_output=True, env=env, cwd=REPO, timeout=60)

    table, rows = stats(), stats("-o", "json")
    assert table.returncode == 0 and rows.returncode == 0, (table, rows)
    import json

    records = json.loads(rows.stdout)
    expected = output.plain([[output.shown(record.get(col)) for col in COLUMNS] for record in records],
                            [col.upper() for col in COLUMNS])
    assert table.stdout == expected.encode(), (table.stdout, expected)
    assert b"\x1b" not in table.stdout
    with_threshold = stats("--fail-above", "0")
    assert with_threshold.returncode == 5 and with_threshold.stdout == table.stdout


def test_styles_never_reach_the_plain_writer_or_a_no_color_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"queue": "orders", "depth": 2, "lag": 7, "dead_letter_queue": "orders.dlq", "dead_letter_depth": 1},
               {"queue": "orders.dlq", "depth": 1, "lag": None, "dead_letter_queue": None, "dead_letter_depth": None}]
    columns = ["queue", "depth", "lag", "dead_letter_queue", "dead_letter_depth"]
    styles = present.stats_attention(records, is_dead_letter_name=lambda row: False, fail_lag_above=3)
    assert styles == [{"dead_letter_queue": present.ALARM, "dead_letter_depth": present.ALARM, "lag": present.ALARM},
                      {"queue": present.ALARM, "depth": present.ALARM}]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def drawn(stream: io.StringIO, with_styles: bool) -> str:
        output.rows(records, "table", columns, stream=stream, styles=styles if with_styles else None)
        return stream.getvalue()

    assert drawn(io.StringIO(), True) == drawn(io.StringIO(), False)  # off a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    assert drawn(Terminal(), True) == drawn(Terminal(), False)  # NO_COLOR on a terminal
    assert "\x1b" not in drawn(Terminal(), True)
    monkeypatch.delenv("NO_COLOR")
    assert not output.styles_shown(1, io.StringIO()) and output.styles_shown(1, Terminal())
    assert not output.styles_shown(output.RICH_ROWS + 1, Terminal())
