"""Property tests (hypothesis) for every parser qctl feeds with text it did not write.

Bounded so that the whole module takes well under 60 s in the normal run: each property has a
``max_examples`` and no per-example deadline (a slow CI machine must not turn speed into a failure),
and the one property that starts processes (``qctl restore``) runs a small sample.  The databases
hypothesis keeps are off (``database=None``): a run is the same on a fresh clone as here.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qctl import codec, config, output, urls
from qctl.backup import BackupFile
from qctl.errors import ConfigError, LocalFileError, UsageError
from qctl.models import DeadLetter, Message
from qctl.selection import Selection, compile_expression

FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(FAST, max_examples=80)

# Text a broker or an operator might hand over: every code point but lone surrogates (no str from
# a decoded byte string or a TOML file holds one).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
CONTROL = st.sampled_from([chr(c) for c in (*range(0x20), *range(0x7f, 0xa0))])


# --- URLs and redaction ----------------------------------------------------------------------------

SCHEMES = st.sampled_from(["redis", "rediss", "amqp", "amqps", "kafka", "kafka+ssl", "sqs+http", "mqtt", "mqtts",
                           "unix", "http", "https"])
HOSTS = st.one_of(st.sampled_from(["localhost", "127.0.0.1", "[::1]", "broker.example", "h"]),
                  st.text(string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=12))
# Passwords: anything at all (a "/" or "@" an operator forgot to percent-encode included), with a
# marker so that a password can never be confused with the text around it.
PASSWORDS = st.builds(lambda core: "Pw9" + core + "9wP",
                      st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\t \x0b\x0c"
                                                                                          "\x1c\x1d\x1e\x1f\x85"
                                                                                          "\xa0\u2028\u2029"),
                              max_size=12))


@st.composite
def broker_urls(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """(URL text, its password, every password in it), each written raw or percent-encoded."""
    password = draw(PASSWORDS)
    written = draw(st.sampled_from([password, urls.quote(password, safe="")]))
    user = draw(st.sampled_from(["", "qctl", "user.name", "a%40b"]))
    hosts = ",".join(f"{host}" + draw(st.sampled_from(["", ":1", ":6379", ":99999", ":x"]))
                     for host in draw(st.lists(HOSTS, min_size=1, max_size=3)))
    path = draw(st.sampled_from(["", "/", "/0", "/%2F", "/vhost", "/a/b"]))
    query = draw(st.sampled_from(["", "?sasl_mechanism=SCRAM-SHA-512", "?management=https://h:1",
                                  "?layout=rq&db=2", "?management=https://admin:{}@m:15672"]))
    secrets = [password]
    if "{}" in query:  # the management API's own password, in the query
        secrets.append(draw(PASSWORDS))
        query = query.format(draw(st.sampled_from([secrets[-1], urls.quote(secrets[-1], safe="")])))
    return f"{draw(SCHEMES)}://{user}:{written}@{hosts}{path}{query}", password, secrets


def renderings(text: str) -> list[str]:
    """Every way qctl shows a URL or the error about it."""
    shown = [urls.redact(text), urls.redact(f"connecting to {text} failed: {text!r}")]
    try:
        parsed = urls.parse(text)
    except UsageError as exc:
        shown += [str(exc), repr(exc), exc.hint or ""]
    else:
        shown += [parsed.render(), str(parsed), repr(parsed), f"{parsed}", urls.redact(f"{parsed}: refused")]
    return shown


@FAST
@given(broker_urls())
def test_no_password_in_any_rendering_of_a_url_or_its_error(case: tuple[str, str, list[str]]) -> None:
    text, _, secrets = case
    for shown in renderings(text):
        for password in secrets:
            assert password not in shown, (text, shown)
            assert urls.quote(password, safe="") not in shown, (text, shown)


@FAST
@given(st.text(max_size=60))
def test_parse_gives_a_url_or_a_usage_error(text: str) -> None:
    try:
        parsed = urls.parse(text)
    except UsageError:
        return
    parsed.render()
    urls.redact(text)


@FAST
@given(broker_urls())
def test_a_parsed_url_renders_back_to_the_same_url(case: tuple[str, str, list[str]]) -> None:
    text, password, _ = case
    if text.startswith("unix:"):
        return  # a socket path: no host, no userinfo
    try:
        parsed = urls.parse(text)
    except UsageError:
        return
    again = urls.parse(parsed.render(masked=False))
    assert again.password == parsed.password == password
    assert (again.scheme, again.hosts, again.username, again.query) == \
        (parsed.scheme, parsed.hosts, parsed.username, parsed.query)


# --- the config file -------------------------------------------------------------------------------

KEYS = st.one_of(st.sampled_from(sorted(config.PROFILE_KEYS | {"sqs", "redis", "rabbitmq", "kafka", "mqtt"})),
                 st.text(string.ascii_letters + "_", min_size=1, max_size=8))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                    TEXT, st.sampled_from(["redis://localhost:1/0", "amqp://u:secret@h/%2F", "kafka://h:1",
                                           "~nosuchuser/x", "", "left", "right", "PATH", "nope://"]),
                    st.datetimes(timezones=st.just(UTC)))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)


def toml_value(value: Any) -> str:
    if value is None:
        return '"null"'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value).replace("inf", "inf")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    names = draw(st.lists(st.one_of(st.sampled_from(["prod", "dev"]), TEXT), max_size=3, unique=True))
    if draw(st.booleans()):
        lines.append(f"default_profile = {toml_value(draw(st.one_of(st.sampled_from(names or ['x']), VALUES)))}")
    if draw(st.booleans()):
        lines.append(f"{draw(KEYS)} = {toml_value(draw(VALUES))}")
    for name in names:
        lines.append(f"[profiles.{json.dumps(name, ensure_ascii=False)}]")
        for key, value in draw(st.dictionaries(KEYS, VALUES, max_size=5)).items():
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    if draw(st.booleans()):
        lines.append(f"profiles = {toml_value(draw(VALUES))}")  # a duplicate or a wrong type
    return "\n".join(lines) + "\n"


def load_and_resolve(path: Path) -> None:
    try:
        loaded = config.load(path)
    except ConfigError:
        return
    assert isinstance(loaded, config.Config)
    for name in loaded.profiles:
        try:
            config.resolve(loaded, profile=name)
        except UsageError:
            pass


@FAST
@given(toml_documents())
def test_config_load_gives_a_config_or_a_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                      document: str) -> None:
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_text(document, encoding="utf-8")
    load_and_resolve(path)


@FEW
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_config_load_of_any_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_bytes(data)
    load_and_resolve(path)


@pytest.fixture(autouse=True)
def _no_caller_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("QCTL_")]:
        monkeypatch.delenv(name)


# --- the body codec --------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
              TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
HEADER_VALUES = st.one_of(JSON_VALUES, st.binary(max_size=20))
TIMES = st.one_of(st.none(), st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1),
                                          timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))])))


@st.composite
def messages(draw: st.DrawFn) -> Message:
    pairs = draw(st.lists(st.tuples(TEXT, HEADER_VALUES), max_size=5))
    repeated = draw(st.booleans())
    headers = {name: codec.header_value(value) for name, value in pairs}
    dead = draw(st.one_of(st.none(), st.builds(DeadLetter, reason=st.one_of(st.none(), TEXT),
                                               source_queue=st.one_of(st.none(), TEXT),
                                               count=st.one_of(st.none(), st.integers(0, 2**40)), time=TIMES)))
    return Message(
        queue=draw(TEXT), position=draw(TEXT), body=draw(st.binary(max_size=64)),
        partition=draw(st.one_of(st.none(), st.integers(0, 1000))),
        offset=draw(st.one_of(st.none(), st.integers(0, 2**62))),
        key=draw(st.one_of(st.none(), st.binary(max_size=16))),
        headers=headers,
        header_pairs=tuple((name, codec.header_value(value)) for name, value in pairs) if repeated else None,
        properties={name: codec.header_value(value) for name, value in draw(st.dictionaries(TEXT, HEADER_VALUES,
                                                                                                max_size=3)).items()},
        timestamp=draw(TIMES), redelivered=draw(st.one_of(st.none(), st.booleans())),
        delivery_count=draw(st.one_of(st.none(), st.integers(0, 100))), dead_letter=dead)


def through_a_file(row: dict[str, Any]) -> Any:
    """The row as a backup line is written and read: JSON text, UTF-8 on disk."""
    line = json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.loads(line.decode("utf-8", "surrogateescape"))


def same_instant(a: datetime | None, b: datetime | None) -> bool:
    return a == b if a is None or b is None else a.timestamp() == b.timestamp()


@FAST
@given(messages(), st.booleans())
def test_the_codec_round_trip_is_exact(message: Message, pairs: bool) -> None:
    row = codec.message_to_json(message, pairs=pairs)
    back = codec.message_from_json(through_a_file(row))
    assert back.body == message.body
    assert back.key == message.key
    assert dict(back.properties) == through_a_file(dict(message.properties))
    if pairs:
        assert list(back.pairs()) == [tuple(pair) for pair in through_a_file([list(p) for p in message.pairs()])]
    assert dict(back.headers) == through_a_file(dict(back.pairs()) if pairs else dict(message.headers))
    assert (back.queue, back.position, back.partition, back.offset, back.redelivered, back.delivery_count) == \
        (message.queue, message.position, message.partition, message.offset, message.redelivered,
         message.delivery_count)
    assert same_instant(back.timestamp, message.timestamp)
    if message.dead_letter is None:
        assert back.dead_letter is None
    else:
        assert back.dead_letter is not None
        assert (back.dead_letter.reason, back.dead_letter.source_queue, back.dead_letter.count) == \
            (message.dead_letter.reason, message.dead_letter.source_queue, message.dead_letter.count)
        assert same_instant(back.dead_letter.time, message.dead_letter.time)
    # And a second trip changes nothing at all.
    assert through_a_file(codec.message_to_json(back, pairs=pairs)) == through_a_file(row)


# --- the backup reader -----------------------------------------------------------------------------

GOOD_LINE = json.dumps({"queue": "q", "position": "0", "body": "aGk=", "body_encoding": "base64", "headers": {}})
HEADER_LINE = json.dumps({"qctl_backup": 2, "backend": "redis", "queue": "q", "created": "2026-01-01T00:00:00Z"})
ROW_FIELDS = st.dictionaries(st.sampled_from(["queue", "position", "body", "body_encoding", "key", "key_encoding",
                                              "headers", "header_pairs", "properties", "partition", "offset",
                                              "timestamp", "redelivered", "delivery_count", "dead_letter"]),
                             JSON_VALUES, max_size=8)


@st.composite
def backup_files(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, and files that are nearly backups: a header, rows with wrong fields, deep nesting."""
    kind = draw(st.sampled_from(["bytes", "lines", "nested", "header"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "nested":
        depth = draw(st.integers(10, 100_000))
        opener = draw(st.sampled_from(['{"a":', "[", '{"body": "x", "headers": {"a":']))
        closer = {"{": "}", "[": "]"}[opener[0]] if opener != '{"body": "x", "headers": {"a":' else "}"
        line = opener * depth + "1" + closer * depth
        return "\n".join(draw(st.permutations([line, GOOD_LINE]))).encode()
    lines = []
    if kind == "header":
        header = json.loads(HEADER_LINE)
        header["qctl_backup"] = draw(st.one_of(st.just(2), JSON_VALUES))
        lines.append(json.dumps(header))
    for _ in range(draw(st.integers(0, 4))):
        lines.append(draw(st.one_of(st.just(GOOD_LINE), ROW_FIELDS.map(json.dumps), TEXT)))
    separator = draw(st.sampled_from(["\n", "\r\n", ",\n"]))
    text = separator.join(lines)
    if draw(st.booleans()):
        text = "[" + text + "]"
    return text.encode("utf-8", "surrogatepass")


def read_backup(path: Path) -> None:
    """What restore does with a file: open it, validate every line, read the messages."""
    try:
        backup = BackupFile(path)
        backup.validate()
        for _number, message in backup.messages():
            assert isinstance(message, Message)
    except LocalFileError as exc:
        assert exc.exit_code == 2
        assert "\n" not in str(exc)


@FAST
@given(backup_files())
def test_the_backup_reader_reads_or_rejects_with_exit_2(tmp_path_factory: pytest.TempPathFactory,
                                                        data: bytes) -> None:
    path = tmp_path_factory.mktemp("backup") / "file.jsonl"
    path.write_bytes(data)
    read_backup(path)


FIXED_SAMPLES = [b"", b"\xff\xfe", ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
                 ("[" * 5000 + "]" * 5000).encode(), (HEADER_LINE + "\n" + GOOD_LINE).encode()]


def restore_dry_run(path: Path, redis_url: str, config_home: Path) -> None:
    """The whole CLI on a file (a dry run against the harness's Redis): exit 0 or 2, never 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QCTL_")} | {"XDG_CONFIG_HOME": str(config_home)}
    proc = subprocess.run([sys.executable, "-m", "qctl", "restore", str(path), "--to", "qctl-fuzz-restore",
                           "-u", redis_url, "--dry-run", "-o", "json"], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode in (0, 2), (path.read_bytes()[:300], proc.stderr)
    if proc.returncode == 2:
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("qctl: error: "), proc.stderr
    else:
        assert json.loads(proc.stdout)["dry_run"] is True


@settings(FAST, max_examples=8)
@given(backup_files())
def test_qctl_restore_on_a_sample_of_generated_files_exits_0_or_2(tmp_path_factory: pytest.TempPathFactory,
                                                                  redis_url: str, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("restore")
    (folder / "file.jsonl").write_bytes(data)
    restore_dry_run(folder / "file.jsonl", redis_url, folder)


@pytest.mark.parametrize("index", range(len(FIXED_SAMPLES)))
def test_qctl_restore_on_hostile_files_exits_0_or_2(tmp_path: Path, redis_url: str, index: int) -> None:
    (tmp_path / "file.jsonl").write_bytes(FIXED_SAMPLES[index])
    restore_dry_run(tmp_path / "file.jsonl", redis_url, tmp_path)


# --- the --where parser ----------------------------------------------------------------------------

TOKENS = st.sampled_from([
    "headers", "body", "key", "dead_letter", "dead_letter.reason", "age", "json", "properties", "queue",
    "partition", "offset", ".", "[", "]", "[*]", "[?", "[0]", "[-1]", "[::0]", "[1:2:0]", "(", ")", "{", "}", ":",
    ",", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "|", "@", "&", "'x'", "'", "`1`", "`3600`", "`\"a\"`",
    "`{}`", "`[`", "`null`", "contains(", "length(", "to_number(", "starts_with(", "abs(", "max(", "sort(",
    "sort_by(", "avg(", "join(", "keys(", "values(", "type(", "not_null(", "reverse(", "merge(", "map(",
    "to_string(", "ceil(", "floor(", "sum(", "min_by(", "max_by(", "ends_with(", "to_array(", "\"q\"", "*", " ",
    "tenant", "1", "-1", "0",
])
EXPRESSIONS = st.one_of(st.lists(TOKENS, min_size=1, max_size=12).map("".join), st.text(max_size=20),
                        st.integers(1, 3000).map(lambda n: "(" * n + "a" + ")" * n),
                        st.integers(1, 3000).map(lambda n: "!" * n + "a"),
                        st.integers(1, 3000).map(lambda n: "a" + ".a" * n))


@pytest.mark.filterwarnings("ignore:deprecated string literal syntax")
@FAST
@given(EXPRESSIONS)
def test_where_compiles_or_is_a_usage_error(expression: str) -> None:
    try:
        compile_expression(expression)
    except UsageError as exc:
        assert "\n" not in str(exc)


@pytest.mark.filterwarnings("ignore:deprecated string literal syntax")
@FAST
@given(EXPRESSIONS, messages())
def test_a_selection_never_raises_on_any_message(expression: str, message: Message) -> None:
    try:
        selection = Selection(expression)
    except UsageError:
        return
    assert selection(message) in (True, False)


# --- the table renderer ----------------------------------------------------------------------------

RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # every control character but the newline
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own styling on a terminal (bold headers), not broker text
FIELDS = st.sampled_from(["queue", "type", "depth", "body", "headers", "key", "targets", "lag", "group"])
CELLS = st.one_of(JSON_VALUES, st.lists(CONTROL, min_size=1, max_size=4).map("".join),
                  st.builds(lambda a, c, b: a + c + b, TEXT, CONTROL, TEXT),
                  st.dictionaries(st.builds(lambda a, c: a + c, TEXT, CONTROL), TEXT, max_size=2))
RECORDS = st.lists(st.dictionaries(FIELDS, CELLS, max_size=6), max_size=4)


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def assert_no_raw_control(text: str, *, styled: bool = False) -> None:
    if styled:
        text = SGR.sub("", text)
    found = RAW_CONTROL.search(text)
    assert found is None, (found, text)


@FAST
@given(RECORDS, st.lists(FIELDS, min_size=1, max_size=6, unique=True))
def test_tables_never_emit_a_raw_control_character(records: list[dict[str, Any]], columns: list[str]) -> None:
    plain = StringIO()
    output.rows(records, "table", columns, stream=plain)
    assert_no_raw_control(plain.getvalue())
    terminal = Terminal()
    output.table(records, columns, terminal)
    assert_no_raw_control(terminal.getvalue(), styled=True)


@FAST
@given(st.dictionaries(FIELDS, CELLS, min_size=1, max_size=6))
def test_a_result_table_never_emits_a_raw_control_character(record: dict[str, Any]) -> None:
    out = StringIO()
    output.result(record, "table", stream=out)
    assert_no_raw_control(out.getvalue())


def test_errors_and_warnings_never_emit_a_raw_control_character(capsys: pytest.CaptureFixture[str]) -> None:
    for code in (*range(0x20), *range(0x7f, 0xa0)):
        output.error(f"queue a{chr(code)}b")
        output.warn(f"queue a{chr(code)}b")
    assert_no_raw_control(capsys.readouterr().err)


@pytest.mark.filterwarnings("ignore:deprecated string literal syntax")
@FAST
@given(EXPRESSIONS, messages())
def test_a_selection_decides_as_on_the_whole_view(expression: str, message: Message) -> None:
    """--where builds only the parts of the view its expression names (qctl.selection.reached): the same
    verdict, and the same not-applicable count, as on the whole object."""
    try:
        narrow = Selection(expression)
    except UsageError:
        return
    whole = Selection(expression)
    whole._parts = None
    assert narrow(message) == whole(message)
    assert narrow.not_applicable == whole.not_applicable
