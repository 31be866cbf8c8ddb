"""``qctl ping`` against each real broker: all good, a wrong password, missing permissions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import QctlRunner


def checks(run_out: list[dict[str, object]]) -> dict[str, object]:
    return {str(row["check"]): row["ok"] for row in run_out}


def test_all_good_on_each_broker(qctl: QctlRunner, redis_env: dict[str, str], rabbitmq_env: dict[str, str],
                                 kafka_url: str) -> None:
    urls = [redis_env["QCTL_TEST_REDIS_ACL_URL"],
            f"{rabbitmq_env['QCTL_TEST_AMQP_URL']}?management={rabbitmq_env['QCTL_TEST_RABBITMQ_MANAGEMENT_URL']}",
            kafka_url]
    for url in urls:
        run = qctl("ping", "-u", url, "-o", "json")
        assert run.rc == 0, run
        found = checks(run.json())
        assert found["connect"] is True and found["authenticate"] is True and "round trip" in found
        assert False not in found.values()
        table = qctl("ping", "-u", url)
        assert table.rc == 0 and table.out.startswith("✓ connect"), table
        assert "qctl-secret" not in run.out + table.out


def test_a_wrong_password_is_exit_3_on_each_broker(qctl: QctlRunner, redis_env: dict[str, str],
                                                   rabbitmq_env: dict[str, str]) -> None:
    for url in (redis_env["QCTL_TEST_REDIS_ACL_URL"], rabbitmq_env["QCTL_TEST_AMQP_URL"]):
        bad = url.replace("qctl-secret", "wrong-password")
        run = qctl("ping", "-u", bad, "-o", "json")
        assert run.rc == 3, run
        assert checks(run.json()) == {"connect": True, "authenticate": False}
        assert run.err.startswith("qctl: error: authenticate failed") and "wrong-password" not in run.out + run.err


def test_a_wrong_sasl_password_is_exit_3(qctl: QctlRunner, kafka_env: dict[str, str], tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "config.toml"
    bad = kafka_env["QCTL_TEST_KAFKA_SASL_URL"].replace("qctl-secret", "wrong-password")
    config.write_text(f'[profiles.k]\nurl = "{bad}"\nca_file = "{kafka_env["QCTL_TEST_KAFKA_CA_FILE"]}"\n')
    config.chmod(0o600)
    run = qctl("ping", "-p", "k", "-o", "json", "--timeout", "5", env={"QCTL_CONFIG": str(config)})
    assert run.rc == 3, run
    assert checks(run.json()).get("authenticate") is False or checks(run.json()).get("connect") is False
    assert "wrong-password" not in run.out + run.err


def test_rabbitmq_user_without_configure_permission(qctl: QctlRunner, rabbitmq_env: dict[str, str]) -> None:
    url = f"{rabbitmq_env['QCTL_TEST_AMQP_LIMITED_URL']}?management={rabbitmq_env['QCTL_TEST_RABBITMQ_MANAGEMENT_URL']}"
    run = qctl("ping", "-u", url, "-o", "json")
    assert run.rc == 0, run  # qctl's commands need read and write, never configure
    rows = {row["check"]: row for row in run.json()}
    assert rows["read"]["ok"] is True and rows["write"]["ok"] is True
    assert rows["configure"]["ok"] is None and "refused" in str(rows["configure"]["detail"])
    assert "does not need it" in str(rows["configure"]["detail"])


@pytest.fixture()
def key_limited_user(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.execute_command("ACL", "SETUSER", "qctl-app", "on", ">app-secret", "~app:*", "+@all")
    yield redis_url.replace("redis://", "redis://qctl-app:app-secret@")
    client.execute_command("ACL", "DELUSER", "qctl-app")


def test_redis_acl_user_limited_to_some_keys(qctl: QctlRunner, key_limited_user: str) -> None:
    run = qctl("ping", "-u", key_limited_user, "-o", "json")
    assert run.rc == 6, run
    rows = {row["check"]: row for row in run.json()}
    assert rows["read"]["ok"] is False and rows["write"]["ok"] is False
    assert "~app:*" in str(rows["read"]["detail"])  # the user may read its own ACL rules (+@all)
    assert rows["read"]["needed_by"] and "peek" in str(rows["read"]["needed_by"])
    assert "capability" in run.err and "app-secret" not in run.out + run.err


def test_sqs_and_mqtt(qctl: QctlRunner) -> None:
    from tests.conftest import brokers_up

    env = brokers_up("sqs", "mqtt")
    for url in (env["QCTL_TEST_SQS_URL"], env["QCTL_TEST_MQTT_AUTH_URL"]):
        run = qctl("ping", "-u", url, "-o", "json")
        assert run.rc == 0, run
        found = checks(run.json())
        assert found["connect"] is True and found["authenticate"] is True and False not in found.values()
    bad = qctl("ping", "-u", env["QCTL_TEST_MQTT_AUTH_URL"].replace("qctl-secret", "wrong-password"), "-o", "json")
    assert bad.rc == 3 and checks(bad.json()) == {"connect": True, "authenticate": False}, bad
    gone = qctl("ping", "-u", "sqs+http://127.0.0.1:1", "--timeout", "2", "-o", "json")
    assert gone.rc == 3 and checks(gone.json()) == {"connect": False}, gone
