"""What the human table shows on a real terminal (tmux): why messages died, no empty columns, binary bodies,
result summaries with a table per target."""

from __future__ import annotations

from typing import Any

import redis

from tests.terminal.conftest import Tmux


def test_a_dlq_peek_says_why_and_drops_empty_columns(tmux: Tmux, rabbitmq_driver: Any) -> None:
    source, dlq = rabbitmq_driver.unique("tty-src"), rabbitmq_driver.unique("tty-src") + ".dlq"
    rabbitmq_driver.make_dead_letters(source, dlq, [b"order 1", b"order 2"])
    try:
        tmux.start("peek", "-u", rabbitmq_driver.url, dlq)
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        header = next(line for line in screen.splitlines() if "POSITION" in line)
        for column in ("REASON", "SOURCE", "DIED", "BODY"):
            assert column in header, screen
        assert "KEY" not in header and "DELIVERY_COUNT" not in header, screen  # empty for every row
        assert "rejected" in screen and source in screen and "EXIT=0" in screen, screen
    finally:
        rabbitmq_driver.delete(dlq)
        rabbitmq_driver.delete(source)


def test_binary_bodies_read_as_size_and_bytes(tmux: Tmux, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete("tty-binary")
    client.lpush("tty-binary", b"\x1f\x8b\x08\x00" + bytes(1200))
    try:
        tmux.start("peek", "-u", redis_url, "tty-binary")
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        assert "<1.2 KB binary> 1f 8b 08 00 00 00 00 00 …" in screen and "base64" not in screen, screen
    finally:
        client.delete("tty-binary")


def test_redrive_results_are_a_summary_and_a_table_per_target(tmux: Tmux, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete("tty-orders", "tty-orders:dlq")
    client.lpush("tty-orders:dlq", b"a", b"b", b"c")
    try:
        tmux.start("redrive", "-u", redis_url, "tty-orders:dlq", "--dry-run")
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        assert "dry run: would move 3 message(s) from tty-orders:dlq, 0 would stay; nothing moved" in screen
        assert "TARGET" in screen and "WOULD_MOVE" in screen and '{"' not in screen, screen
        tmux.close()
        tmux.start("redrive", "-u", redis_url, "tty-orders:dlq")
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        assert "moved 3 message(s) from tty-orders:dlq; 0 skipped, 0 failed" in screen and "MOVED" in screen, screen
        assert client.llen("tty-orders") == 3
    finally:
        client.delete("tty-orders", "tty-orders:dlq")
