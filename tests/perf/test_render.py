"""Rendering work, counted: each cell formatted once, no type sniffing, the plain form byte for byte as before.

The goal is a 10,000-row table in <= 60 ms of CPU (bench/core.py measures it); these tests guard how:
the plain table is qctl's own aligned writer (tabulate sniffed every cell and took ~65 ms to import),
compared here with tabulate's output on generated tables, and JSON rows share one C encoder.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qctl import output

COLUMNS = ["queue", "type", "depth", "in_flight", "consumers", "lag", "dead_letter_queue", "dead_letter_depth"]


def _stats_rows(count: int) -> list[dict[str, Any]]:
    return [{"backend": "redis", "queue": f"perf:q:{i}", "type": "list", "depth": i % 7, "in_flight": None,
             "consumers": None, "lag": None, "dead_letter_queue": f"perf:q:{i}:dlq" if i % 100 == 0 else None,
             "dead_letter_depth": 1 if i % 100 == 0 else None} for i in range(count)]


def test_each_cell_is_formatted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    shown = output.shown

    def counting(value: Any) -> str:
        nonlocal calls
        calls += 1
        return shown(value)

    monkeypatch.setattr(output, "shown", counting)
    buffer = io.StringIO()
    output.rows(_stats_rows(10_000), "table", COLUMNS, stream=buffer)
    assert calls == 10_000 * len(COLUMNS)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 10_001 and lines[0].split() == [c.upper() for c in COLUMNS]
    starts = {line.index("list") for line in lines[1:]}  # still aligned: every TYPE cell starts in one column
    assert len(starts) == 1


def test_a_table_loads_neither_tabulate_nor_rich_off_a_terminal_or_when_long() -> None:
    code = ("import io, json, sys\nfrom qctl import output\n"
            "class Tty(io.StringIO):\n    def isatty(self): return True\n"
            f"rows = [{{'queue': f'q{{i}}', 'depth': i}} for i in range({output.RICH_ROWS + 1})]\n"
            "output.rows(rows, 'table', ['queue', 'depth'], stream=io.StringIO())\n"
            "output.rows(rows, 'table', ['queue', 'depth'], stream=Tty())\n"
            "print(json.dumps(sorted(m for m in ('tabulate', 'rich.table', 'rich.console') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_a_short_table_on_a_terminal_is_still_drawn_by_rich() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    output.rows(_stats_rows(3), "table", COLUMNS, stream=screen)
    assert "┃" in screen.getvalue() or "│" in screen.getvalue()


def test_control_characters_stay_escaped() -> None:
    buffer = io.StringIO()
    output.rows([{"queue": "evil\x1b[2J\nname", "depth": 1}], "table", ["queue", "depth"], stream=buffer)
    assert "\x1b" not in buffer.getvalue() and "evil\\x1b[2J\\nname" in buffer.getvalue()


CELL = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "  padded  ", "-", "True", "False", "1.0", "007", "1e5", "nan", "\xa0x\xa0",
                     "\u3000wide\u3000", "中文", "é", "x\u2028y", "a\tb"]),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=5).flatmap(
    lambda width: st.tuples(st.lists(st.text(alphabet="ABCDEFGHIJ_", min_size=1, max_size=9), min_size=width,
                                     max_size=width),
                            st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1, max_size=8))))
def test_the_plain_table_is_what_tabulate_printed(table: tuple[list[str], list[list[str]]]) -> None:
    tabulate = pytest.importorskip("tabulate").tabulate
    headers, data = table
    cells = [[output.visible(value) for value in line] for line in data]  # what table() hands to the writer
    expected = tabulate(cells, headers=headers, tablefmt="plain", disable_numparse=True) + "\n"
    assert output.plain(cells, headers) == expected


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON, max_size=6))
def test_json_rows_are_what_json_dumps_printed(row: dict[str, Any]) -> None:
    assert output.row_encoder()(row) == json.dumps(row, ensure_ascii=False)
