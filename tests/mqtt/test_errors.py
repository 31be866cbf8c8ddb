"""Wrong passwords, TLS and unreachable brokers: one line, the right exit code, never a password."""

from __future__ import annotations

import time
from pathlib import Path

from qctl.testing.runner import QctlRunner
from qctl.urls import parse
from tests.mqtt.driver import MQTTDriver


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qctl: error: ") and "Traceback" not in err, err
    return lines[0]


def test_wrong_password_and_no_password_are_exit_3(mqtt_driver: MQTTDriver, qctl: QctlRunner) -> None:
    auth = parse(mqtt_driver.auth_url)
    wrong = f"mqtt://{auth.username}:wrong-password@{auth.host}:{auth.port}"
    for url in (wrong, f"mqtt://{auth.host}:{auth.port}"):
        run = qctl("peek", "-u", url, "a/#")
        assert run.rc == 3 and "authentication failed" in one_line(run.err), run
        assert "wrong-password" not in run.out + run.err
    good = qctl("stats", "-u", mqtt_driver.auth_url, "-o", "json", "a/#")
    assert good.rc == 0, good
    assert "qctl-secret" not in good.out + good.err


def test_tls_with_the_right_ca_works(mqtt_driver: MQTTDriver, qctl: QctlRunner, tree: str, tmp_path: Path) -> None:
    mqtt_driver.make_queue(tree, [])
    mqtt_driver.client.wait([mqtt_driver.client.publish(mqtt_driver.base(tree) + "/x", b"over tls", retain=True)])
    run = qctl("peek", "-u", f"{mqtt_driver.tls_url}/?ca_file={mqtt_driver.ca_file}", "-o", "json", tree)
    assert run.rc == 0 and [r["body"] for r in run.json()] == ["over tls"], run
    config = tmp_path / "xdg" / "qctl" / "config.toml"  # the profile's ca_file, as operators keep it
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[profiles.tls]\nurl = "{mqtt_driver.tls_url}"\nca_file = "{mqtt_driver.ca_file}"\n')
    profiled = qctl("peek", "-p", "tls", "-o", "json", tree)
    assert profiled.rc == 0 and [r["body"] for r in profiled.json()] == ["over tls"], profiled
    assert "qctl-secret" not in run.out + run.err + profiled.out + profiled.err


def test_tls_errors(mqtt_driver: MQTTDriver, qctl: QctlRunner, tmp_path: Path) -> None:
    untrusted = qctl("peek", "-u", mqtt_driver.tls_url, "a/#")  # the system's CAs do not know the harness CA
    assert untrusted.rc == 3 and "certificate" in one_line(untrusted.err), untrusted
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    wrong = qctl("peek", "-u", f"{mqtt_driver.tls_url}/?ca_file={other_ca}", "a/#")
    assert wrong.rc == 3 and "certificate" in one_line(wrong.err), wrong
    missing = qctl("peek", "-u", f"{mqtt_driver.tls_url}/?ca_file={tmp_path}/no-such-ca.pem", "a/#")
    assert missing.rc == 2 and "no-such-ca.pem" in one_line(missing.err), missing
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    bad = qctl("peek", "-u", f"{mqtt_driver.tls_url}/?ca_file={garbage}", "a/#")
    assert bad.rc == 2 and "garbage.pem" in one_line(bad.err), bad
    plain_to_tls = qctl("peek", "-u", mqtt_driver.tls_url.replace("mqtts://", "mqtt://"), "--timeout", "3", "a/#")
    assert plain_to_tls.rc == 3 and "TLS port" in one_line(plain_to_tls.err), plain_to_tls
    tls_to_plain = qctl("peek", "-u", f"mqtts://{parse(mqtt_driver.url).host}:{parse(mqtt_driver.url).port}"
                        f"/?ca_file={mqtt_driver.ca_file}", "--timeout", "3", "a/#")
    assert tls_to_plain.rc == 3, tls_to_plain
    one_line(tls_to_plain.err)
    for run in (untrusted, wrong, missing, bad, plain_to_tls):
        assert "qctl-secret" not in run.out + run.err


def test_unreachable_is_exit_3_within_the_timeout(mqtt_driver: MQTTDriver, qctl: QctlRunner) -> None:
    started = time.monotonic()
    refused = qctl("stats", "-u", mqtt_driver.unreachable_url(), "--timeout", "2")
    assert refused.rc == 3 and "connection refused" in one_line(refused.err), refused
    silent = qctl("stats", "-u", "mqtt://10.255.255.1:1883", "--timeout", "2")  # nothing answers the SYN
    assert silent.rc == 3, silent
    one_line(silent.err)
    assert time.monotonic() - started < 2 + 2 + 8


def test_options_and_urls_that_do_not_apply(mqtt_driver: MQTTDriver, qctl: QctlRunner) -> None:
    partition = qctl("peek", "-u", mqtt_driver.url, "--partition", "0", "a/#")
    assert partition.rc == 2 and "--partition does not apply" in one_line(partition.err)
    session_elsewhere = qctl("purge", "--session", "x", "-u", "redis://127.0.0.1:1/0")
    assert session_elsewhere.rc == 2, session_elsewhere
    protocol = qctl("peek", "-u", mqtt_driver.url + "/?protocol=4.2", "a/#")
    assert protocol.rc == 2 and "protocol" in one_line(protocol.err), protocol
