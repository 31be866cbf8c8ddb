"""TLS and authentication on every protocol, with the TLS files from a profile.

RabbitMQ over amqps with the management API over https, Kafka over SSL and over SASL_SSL with
SCRAM-SHA-512, and Redis with client certificates (mTLS), all from the harness's one CA:
``stats``, ``peek``, ``redrive`` and ``purge --backup`` work, checked on the broker (seeded and
read back over the plain listeners of the same brokers, or with the client certificate).  A CA
that signed nothing here, a wrong password and a missing client certificate are exit 3 with one
line; a TLS file that cannot be used is exit 2 naming it; no password and no key is printed,
``--debug`` tracebacks included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from qctl.models import Message
from qctl.testing.driver import unique_name
from tests.conftest import QctlRunner, Run
from tests.kafka.driver import KafkaDriver
from tests.rabbitmq.driver import RabbitMQDriver
from tests.topology.conftest import (
    PASSWORD,
    WRONG_PASSWORD,
    debug_error,
    one_line_error,
    secrets_absent,
    write_profiles,
)

PASSWORD_VAR = "TOPOLOGY_TEST_PASSWORD"  # password_env of the profiles that keep it out of the URL
SECRETS = (PASSWORD, WRONG_PASSWORD)
BODIES = [f"tls-{i}".encode() for i in range(5)]


@dataclass
class Backend:
    """One TLS setup: its profile, and plain access to the same broker for seeding and checking."""

    name: str
    profile: dict[str, Any]
    suffix: str  # the dead-letter suffix its convention knows
    seed: Callable[[str, list[bytes]], None]
    contents: Callable[[str], list[bytes]]  # what waits in a queue (Kafka: records not yet consumed)
    delete: Callable[[str], None]


def rabbitmq_backend(env: dict[str, str]) -> Backend:
    driver = RabbitMQDriver(env)

    def seed(name: str, bodies: list[bytes]) -> None:
        driver.make_queue(name, [Message(queue=name, position="", body=body) for body in bodies])

    return Backend("rabbitmq", {"url": env["QCTL_TEST_AMQPS_URL"],
                                "management_url": env["QCTL_TEST_RABBITMQ_MANAGEMENT_HTTPS_URL"],
                                "ca_file": env["QCTL_TEST_RABBITMQ_CA_FILE"]},
                   ".dlq", seed, driver.contents, driver.delete)


def kafka_backend(env: dict[str, str], sasl: bool) -> Backend:
    driver = KafkaDriver(env)

    def seed(name: str, bodies: list[bytes]) -> None:
        driver.create_topic(name, 1)
        driver.produce(name, [(None, body, []) for body in bodies])

    def contents(name: str) -> list[bytes]:
        """Records after the start offset and after what redrive's group committed (Kafka keeps those)."""
        start, _end = driver.offsets(name)
        first = max(start.get(0, 0), driver.committed("qctl-redrive", name).get(0, 0))
        return [record.value for record in driver.records(name) if record.offset >= first]

    profile: dict[str, Any] = {"url": env["QCTL_TEST_KAFKA_SSL_URL"], "ca_file": env["QCTL_TEST_KAFKA_CA_FILE"]}
    if sasl:  # the password from the environment, not the URL: scrubbed all the same
        profile = {"url": env["QCTL_TEST_KAFKA_SASL_URL"].replace(f":{PASSWORD}@", "@"),
                   "password_env": PASSWORD_VAR, "ca_file": env["QCTL_TEST_KAFKA_CA_FILE"]}
    return Backend("kafka-sasl" if sasl else "kafka-ssl", profile, ".DLT", seed, contents, driver.delete)


def redis_backend(env: dict[str, str]) -> Backend:
    ca, cert, key = (env[f"QCTL_TEST_REDIS_{name}"] for name in ("CA_FILE", "CLIENT_CERT", "CLIENT_KEY"))
    client = redis.Redis(host="127.0.0.1", port=int(env["QCTL_TEST_REDIS_MTLS_URL"].rsplit(":", 1)[1].split("/")[0]),
                         ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key, socket_timeout=10)

    def seed(name: str, bodies: list[bytes]) -> None:
        client.delete(name)
        if bodies:
            client.lpush(name, *bodies)  # the first body is consumed first (from the right)

    def contents(name: str) -> list[bytes]:
        return list(reversed(client.lrange(name, 0, -1)))

    return Backend("redis-mtls", {"url": env["QCTL_TEST_REDIS_MTLS_URL"], "ca_file": ca, "cert_file": cert,
                                  "key_file": key}, ":dlq", seed, contents, lambda name: client.delete(name))


@pytest.fixture(scope="module")
def backends(topology_env: dict[str, str]) -> dict[str, Backend]:
    return {b.name: b for b in (rabbitmq_backend(topology_env), kafka_backend(topology_env, sasl=False),
                                kafka_backend(topology_env, sasl=True), redis_backend(topology_env))}


NAMES = ["rabbitmq", "kafka-ssl", "kafka-sasl", "redis-mtls"]


@pytest.fixture()
def tls_qctl(qctl: QctlRunner, clean_env: dict[str, str]) -> Callable[..., Run]:
    """``run(profiles, *args)``: qctl with these profiles in its config file and the password variable set."""

    def run(profiles: dict[str, dict[str, Any]], *args: str) -> Run:
        write_profiles(Path(clean_env["XDG_CONFIG_HOME"]), profiles)
        return qctl(*args, env={PASSWORD_VAR: PASSWORD}, timeout=120)

    return run


@pytest.fixture()
def queue_names(backends: dict[str, Backend]) -> Iterator[Callable[[Backend], str]]:
    made: list[tuple[Backend, str]] = []

    def make(backend: Backend) -> str:
        base = unique_name("tls")
        made.extend([(backend, base), (backend, base + backend.suffix)])
        return base

    yield make
    for backend, name in made:
        backend.delete(name)


@pytest.mark.parametrize("name", NAMES)
def test_stats_peek_redrive_and_purge_over_tls(name: str, backends: dict[str, Backend], tls_qctl: Callable[..., Run],
                                               queue_names: Callable[[Backend], str], tmp_path: Path) -> None:
    backend = backends[name]
    base = queue_names(backend)
    dlq = base + backend.suffix
    backend.seed(base, [])
    backend.seed(dlq, BODIES)
    profiles = {"tls": backend.profile}
    runs = []

    listing = tls_qctl(profiles, "stats", "-p", "tls", f"{base}*", "-o", "json")  # the listing path
    stats = tls_qctl(profiles, "stats", "-p", "tls", base, dlq, "-o", "json")  # named: an empty Redis list is absent
    runs += [listing, stats]
    assert listing.rc == 0 and stats.rc == 0, (listing, stats)
    assert {row["queue"]: row["depth"] for row in listing.json()}[dlq] == len(BODIES)
    rows = {row["queue"]: row for row in stats.json()}
    assert rows[dlq]["depth"] == len(BODIES) and rows[base]["depth"] == 0, rows
    assert rows[base]["dead_letter_queue"] == dlq and rows[base]["dead_letter_depth"] == len(BODIES), rows

    peek = tls_qctl(profiles, "peek", "-p", "tls", dlq, "-n", "3", "-o", "jsonl")
    runs.append(peek)
    assert peek.rc == 0, peek
    assert [row["body"].encode() for row in peek.jsonl()] == BODIES[:3]
    assert backend.contents(dlq) == BODIES  # peek took nothing

    redrive = tls_qctl(profiles, "redrive", "-p", "tls", dlq, "--to", base, "-o", "json", "-q")
    runs.append(redrive)
    assert redrive.rc == 0, redrive
    assert redrive.json()["moved"] == len(BODIES)
    assert backend.contents(base) == BODIES and backend.contents(dlq) == []

    backup = tmp_path / "purged.jsonl"
    purge = tls_qctl(profiles, "purge", "-p", "tls", base, "--yes", "--backup", str(backup), "-o", "json", "-q")
    runs.append(purge)
    assert purge.rc == 0, purge
    assert purge.json()["purged"] == len(BODIES)
    assert backend.contents(base) == []
    lines = [json.loads(line) for line in backup.read_text().splitlines()]
    assert lines[0]["qctl_backup"] == 2 and [line["body"].encode() for line in lines[1:]] == BODIES

    for run in runs:
        secrets_absent(run, SECRETS)


# --- refusals ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    backend: str
    what: str
    change: Callable[[dict[str, Any], dict[str, Path]], dict[str, Any]]  # profile, files -> broken profile
    code: int
    names: str | None = None  # the file the error must name (a key of files)
    says: str | None = None  # what the line must say (the cause, not "is the server running?")
    commands: tuple[tuple[str, ...], ...] = (("stats", "QUEUE"), ("peek", "QUEUE"))


def with_(**changes: Any) -> Callable[[dict[str, Any], dict[str, Path]], dict[str, Any]]:
    """A profile change; a value naming one of ``files`` (``"@other_ca"``) is replaced by its path."""

    def change(profile: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
        changed = dict(profile)
        for key, value in changes.items():
            if value is None:
                changed.pop(key, None)
            elif isinstance(value, str) and value.startswith("@"):
                changed[key] = str(files[value[1:]])
            elif callable(value):
                changed[key] = value(changed[key])
            else:
                changed[key] = value
        return changed

    return change


def wrong_password(url: str) -> str:
    return url.replace(f":{PASSWORD}@", f":{WRONG_PASSWORD}@")


REFUSALS = [
    Refusal("rabbitmq", "wrong CA", with_(ca_file="@other_ca"), 3, says="certificate is not signed by"),
    Refusal("rabbitmq", "wrong password", with_(url=wrong_password), 3),
    Refusal("rabbitmq", "missing CA file", with_(ca_file="@missing"), 2, names="missing"),
    Refusal("rabbitmq", "CA file not PEM", with_(ca_file="@garbage"), 2, names="garbage"),
    Refusal("rabbitmq", "client certificate is a directory", with_(cert_file="@folder", key_file="@other_key"), 2,
            names="folder"),
    Refusal("kafka-ssl", "wrong CA", with_(ca_file="@other_ca"), 3, commands=(("stats", "QUEUE"),)),
    Refusal("kafka-ssl", "missing CA file", with_(ca_file="@missing"), 2, names="missing"),
    Refusal("kafka-sasl", "wrong CA", with_(ca_file="@other_ca"), 3, commands=(("stats", "QUEUE"),)),
    Refusal("kafka-sasl", "wrong password", with_(password_env=None, url=lambda url: url.replace(
        "qctl@", f"qctl:{WRONG_PASSWORD}@")), 3, commands=(("stats", "QUEUE"), ("peek", "QUEUE"))),
    Refusal("kafka-sasl", "unreadable password file", with_(password_env=None, password_file="@missing"), 2),
    Refusal("redis-mtls", "wrong CA", with_(ca_file="@other_ca"), 3, says="certificate is not signed by"),
    Refusal("redis-mtls", "no client certificate", with_(cert_file=None, key_file=None), 3, says="cert_file"),
    Refusal("redis-mtls", "missing client key", with_(key_file="@missing"), 2, names="missing"),
    Refusal("redis-mtls", "key of another certificate", with_(key_file="@other_key"), 2, names="other_key"),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[f"{r.backend}-{r.what.replace(' ', '-')}" for r in REFUSALS])
def test_refusals_are_one_line_with_the_right_code_and_no_secret(
        refusal: Refusal, backends: dict[str, Backend], tls_qctl: Callable[..., Run], other_ca: Path,
        tmp_path: Path) -> None:
    backend = backends[refusal.backend]
    files = {"other_ca": other_ca, "other_key": other_ca.with_name("ca.key"), "missing": tmp_path / "no-such.pem",
             "garbage": tmp_path / "garbage.pem", "folder": tmp_path}
    files["garbage"].write_text("this is not a certificate\n")
    profiles = {"broken": refusal.change(backend.profile, files)}
    queue = "tls-refusal" + backend.suffix
    args = [(*[queue if part == "QUEUE" else part for part in command], "-p", "broken", "--timeout", "3", *debug)
            for command in refusal.commands for debug in ((), ("--debug",))]
    with ThreadPoolExecutor(max_workers=len(args)) as pool:  # the Kafka ones each wait out --timeout
        runs = list(pool.map(lambda argv: tls_qctl(profiles, *argv), args))
    for argv, run in zip(args, runs, strict=True):
        line = debug_error(run, refusal.code) if "--debug" in argv else one_line_error(run, refusal.code)
        if refusal.names:
            assert str(files[refusal.names]) in line, run
        if refusal.says:
            assert refusal.says in line, run
        secrets_absent(run, SECRETS)
