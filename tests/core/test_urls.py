"""URL parsing and password redaction."""

from __future__ import annotations

import pytest

from qctl import urls
from qctl.errors import UsageError


@pytest.mark.parametrize(("text", "scheme", "hosts", "path"), [
    ("redis://localhost:6379/0", "redis", (("localhost", 6379),), "0"),
    ("rediss://u:p4ss@cache.example:6380/2", "rediss", (("cache.example", 6380),), "2"),
    ("amqp://guest:guest@rabbit/%2F", "amqp", (("rabbit", None),), "/"),
    ("amqp://guest:guest@rabbit:5672/prod%2Forders", "amqp", (("rabbit", 5672),), "prod/orders"),
    ("kafka://k1:9092,k2:9093", "kafka", (("k1", 9092), ("k2", 9093)), ""),
    ("kafka://[::1]:9092", "kafka", (("::1", 9092),), ""),
])
def test_parse(text: str, scheme: str, hosts: tuple[tuple[str, int | None], ...], path: str) -> None:
    parsed = urls.parse(text)
    assert (parsed.scheme, parsed.hosts, parsed.path) == (scheme, hosts, path)


def test_unix_socket_with_db() -> None:
    parsed = urls.parse("unix:///run/redis.sock?db=3")
    assert parsed.path == "/run/redis.sock"
    assert parsed.query == {"db": "3"}


def test_query_and_userinfo() -> None:
    parsed = urls.parse("kafka://alice:s3cr%40t@k1:9092?sasl_mechanism=SCRAM-SHA-512")
    assert parsed.username == "alice"
    assert parsed.password == "s3cr@t"
    assert parsed.query == {"sasl_mechanism": "SCRAM-SHA-512"}


@pytest.mark.parametrize("bad", ["localhost:6379", "redis://", "redis://host:99999", "redis://host:abc", "://x"])
def test_malformed_urls_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        urls.parse(bad)


def test_render_masks_password() -> None:
    parsed = urls.parse("amqp://admin:hunter22@rabbit:5672/%2F")
    assert str(parsed) == "amqp://admin:***@rabbit:5672/%2F"
    assert "hunter22" not in repr(parsed)
    assert parsed.render(masked=False) == "amqp://admin:hunter22@rabbit:5672/%2F"


def test_redact_urls_inside_text_and_registered_secrets() -> None:
    text = "cannot connect to redis://bob:topsecret@host:6379/0 (auth topsecret failed)"
    urls.parse("redis://bob:topsecret@host:6379/0")
    assert urls.redact(text) == "cannot connect to redis://bob:***@host:6379/0 (auth *** failed)"


def test_registered_secret_masked_even_url_quoted() -> None:
    urls.register_secret("p@ss/word")
    assert urls.scrub("x p%40ss%2Fword y p@ss/word") == "x *** y ***"
