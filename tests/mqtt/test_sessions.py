"""``purge --session``: dropping an offline persistent session, refusing a connected client, on the real mosquitto.

Whether a client is connected, qctl learns from the broker's log
(``broker_log``).  The harness's mosquitto logs to stdout redirected into
``.brokers/mqtt/mosquitto.log``, which C's stdio buffers in 4 KiB blocks, so a
line can sit in the buffer for a while; :func:`logged` makes the broker log
throwaway connections until the line the test needs has reached the file.  (A
mosquitto with ``log_dest file`` flushes every line, as qctl's docs require.)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qctl.testing.runner import QctlRunner
from tests.mqtt.driver import Client, MQTTDriver

REPO = Path(__file__).resolve().parents[2]
BROKER_LOG = REPO / ".brokers" / "mqtt" / "mosquitto.log"


def logged(driver: MQTTDriver, needle: str) -> None:
    """Until ``needle`` is in the broker's log file (each throwaway connection adds ~150 bytes of log)."""
    for _ in range(400):
        if needle in BROKER_LOG.read_text(errors="replace"):
            return
        Client(driver.url, f"log-flush-{uuid.uuid4().hex[:20]}").close()
    raise AssertionError(f"{needle!r} never reached {BROKER_LOG}")


@pytest.fixture()
def client_id(mqtt_driver: MQTTDriver) -> Iterator[str]:
    cid = f"worker-{uuid.uuid4().hex[:10]}"
    yield cid
    Client(mqtt_driver.url, cid, clean_start=True).close()  # whatever the test left: no session stays behind


def offline_session(driver: MQTTDriver, client_id: str, queued: int, size: int = 0) -> str:
    """A persistent session (expiry one hour) subscribed at QoS 1, offline, with ``queued`` messages waiting
    (of ``size`` bytes each, if given)."""
    topic = f"qctl-test/jobs-{client_id}"
    worker = Client(driver.url, client_id, session_expiry=3600)
    worker.subscribe(topic, qos=1)
    worker.close()
    bodies = [(f"job {i} ".encode() * size)[:size] if size else f"job {i}".encode() for i in range(queued)]
    driver.client.wait([driver.client.publish(topic, body, qos=1) for body in bodies])
    return topic


def waiting(driver: MQTTDriver, client_id: str) -> tuple[bool, int]:
    """(does the session exist, how many messages it delivers on resuming), leaving it as it was: the
    messages are not acknowledged, so they stay queued for the real client."""
    probe = Client(driver.url, client_id, clean_start=False, session_expiry=3600, manual_ack=True)
    try:
        return probe.session_present, len(probe.take(1000, timeout=1.0))
    finally:
        probe.close()


def with_log(url: str) -> str:
    return f"{url}/?broker_log={BROKER_LOG}"


def test_purge_session_drops_an_offline_session_and_its_queue(mqtt_driver: MQTTDriver, qctl: QctlRunner,
                                                              client_id: str) -> None:
    offline_session(mqtt_driver, client_id, 5, size=100_000)
    logged(mqtt_driver, f"Client {client_id} disconnected.")
    first, before = mqtt_driver.client.sys_figures(), mqtt_driver.client.sys_figures()
    # Other tests (a soak run...) may publish on the shared broker meanwhile: exact counts only when it is quiet.
    quiet = all(first[key] == before[key] for key in ("store/messages/count", "store/messages/bytes"))
    dry = qctl("purge", "--session", client_id, "--dry-run", "-u", with_log(mqtt_driver.url), "-o", "json")
    assert dry.rc == 0, dry
    assert dry.json()["dry_run"] is True and dry.json()["connected"] is False and dry.json()["queued"] >= 5
    assert waiting(mqtt_driver, client_id) == (True, 5)  # the dry run changed nothing
    run = qctl("purge", "--session", client_id, "--yes", "-u", with_log(mqtt_driver.url), "-o", "json")
    assert run.rc == 0, run
    record = run.json()
    assert (record["client_id"], record["dropped"], record["connected"], record["forced"]) == (
        client_id, True, False, False)
    assert "left" in record["evidence"]
    after = mqtt_driver.client.sys_figures()
    freed = record["store_bytes_before"] - record["store_bytes_after"]
    seen_freed = int(before["store/messages/bytes"]) - int(after["store/messages/bytes"])
    for value in (freed, seen_freed):  # 5 x 100 kB left the store, by qctl's figures and by the test's own
        assert abs(value - 500_000) <= (200 if quiet else 20_000), (value, record)  # $SYS values vary a little
    if quiet:  # the test's own window is longer (the dry run, the probe): bytes are its check
        assert record["queued"] == 5
        assert record["store_messages_before"] - record["store_messages_after"] == 5
    assert record["offline_sessions_before"] - record["offline_sessions_after"] == 1
    assert int(before["clients/disconnected"]) - int(after["clients/disconnected"]) == 1
    assert waiting(mqtt_driver, client_id) == (False, 0)  # the session and its queue are gone


def test_refuses_the_session_of_a_connected_client(mqtt_driver: MQTTDriver, qctl: QctlRunner,
                                                   client_id: str) -> None:
    topic = f"qctl-test/jobs-{client_id}"
    live = Client(mqtt_driver.url, client_id, session_expiry=3600)
    try:
        live.subscribe(topic, qos=1)
        logged(mqtt_driver, f"as {client_id} (p5, c1, k60)")
        run = qctl("purge", "--session", client_id, "--yes", "-u", with_log(mqtt_driver.url))
        assert run.rc == 2 and "is connected" in run.err and "--force" in run.err, run
        offline_session(mqtt_driver, other := f"{client_id}-other", 1)  # so that the broker has an offline one
        mqtt_driver.client.sys_figures()  # ...and says so in $SYS
        try:
            unsure = qctl("purge", "--session", client_id, "--yes", "-u", mqtt_driver.url)  # no log: cannot tell
            assert unsure.rc == 2 and "cannot tell" in unsure.err, unsure
        finally:
            Client(mqtt_driver.url, other).close()
        mqtt_driver.client.wait([mqtt_driver.client.publish(topic, b"still here", qos=1)])
        assert [bytes(m.payload) for m in live.take(1)] == [b"still here"]  # never disconnected
        assert not live.disconnected.is_set()
    finally:
        live.close()


def test_no_offline_session_at_all_is_exit_4(mqtt_driver: MQTTDriver, qctl: QctlRunner, client_id: str) -> None:
    """Where the broker has no offline session ($SYS clients/disconnected 0), none can be this client's."""
    if int(mqtt_driver.client.sys_figures().get("clients/disconnected", "1")) != 0:
        pytest.skip("another client has an offline session on the shared broker right now")
    live = Client(mqtt_driver.url, client_id, session_expiry=3600)
    try:
        run = qctl("purge", "--session", client_id, "--yes", "-u", mqtt_driver.url)
        assert run.rc == 4 and "no offline session" in run.err, run
        assert not live.disconnected.is_set()
    finally:
        live.close()


def test_cannot_tell_without_a_log_and_force_takes_over(mqtt_driver: MQTTDriver, qctl: QctlRunner,
                                                        client_id: str) -> None:
    offline_session(mqtt_driver, client_id, 3)
    unsure = qctl("purge", "--session", client_id, "--yes", "-u", mqtt_driver.url)
    assert unsure.rc == 2 and "cannot tell" in unsure.err, unsure
    no_yes = qctl("purge", "--session", client_id, "--force", "-u", mqtt_driver.url)
    assert no_yes.rc == 2 and "--yes" in no_yes.err, no_yes
    assert waiting(mqtt_driver, client_id) == (True, 3)
    live = Client(mqtt_driver.url, client_id, clean_start=False, session_expiry=3600, manual_ack=True)
    try:
        forced = qctl("purge", "--session", client_id, "--yes", "--force", "-u", mqtt_driver.url, "-o", "json")
        assert forced.rc == 0 and forced.json()["dropped"] is True and forced.json()["forced"] is True, forced
        deadline = time.monotonic() + 5
        while not live.disconnected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.disconnected.is_set()  # --force took the live connection over
    finally:
        live.close()
    assert waiting(mqtt_driver, client_id) == (False, 0)


def test_the_broker_log_is_read_for_the_last_word_on_a_client(tmp_path: Path) -> None:
    """The parser on lines in mosquitto 2.0's own words (the end-to-end cases above use the real log)."""
    from qctl.adapters.mqtt.sessions import log_evidence

    log = tmp_path / "mosquitto.log"
    log.write_text("1796175657: New client connected from 127.0.0.1:42241 as a b (p5, c0, k60, u'qctl').\n"
                   "1796175658: New client connected from 127.0.0.1:42242 as other (p2, c1, k60).\n"
                   "1796175660: Client a b closed its connection.\n"
                   "2026-12-02T01:00:00: Client other has exceeded timeout, disconnecting.\n"
                   "1796175670: New client connected from [::1]:4444 as other (p4, c0, k30).\n")
    assert log_evidence(str(log), "a b").connected is False
    assert log_evidence(str(log), "other").connected is True
    assert log_evidence(str(log), "nobody").connected is None
    with pytest.raises(Exception) as missing:
        log_evidence(str(tmp_path / "none.log"), "x")
    assert "none.log" in str(missing.value)
