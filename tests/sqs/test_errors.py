"""Errors on SQS: one line and the contract's exit code, from real processes.

Real servers where a server can show it (ElasticMQ, a closed port, an HTTP server that is not SQS, a missing
botocore); the error helper alone only for what none can: AWS's own refusals (credentials, the 60 s purge
limit), which ElasticMQ never sends.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qctl.errors import BrokerUnavailable, QueueNotFound, UsageError
from qctl.testing.runner import runner
from tests.conftest import QctlRunner
from tests.sqs.driver import SQSDriver

NO_AWS = {"AWS_CONFIG_FILE": "/nonexistent/qctl-test-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/creds",
          "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture()
def bare(clean_env: dict[str, str]) -> QctlRunner:
    """qctl in an environment with no AWS settings at all (no credentials, no region, no instance role)."""
    return runner({**{k: v for k, v in clean_env.items() if not k.startswith("AWS_")}, **NO_AWS})


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qctl: error: ") and "Traceback" not in err, err
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def not_sqs() -> Iterator[str]:
    """An HTTP server that is not SQS (404 to everything), as sqs+http://."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>not here</body></html>")

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"sqs+http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_wrong_endpoint_is_exit_3(qctl: QctlRunner, not_sqs: str) -> None:
    closed = qctl("stats", "-u", f"sqs+http://127.0.0.1:{free_port()}", "--timeout", "3", "orders")
    assert closed.rc == 3 and "cannot reach SQS" in one_line(closed.err), closed
    other = qctl("peek", "-u", not_sqs, "orders")
    assert other.rc == 3 and "not as SQS does" in one_line(other.err), other
    assert "<html>" not in other.err
    tls = qctl("stats", "-u", not_sqs.replace("sqs+http", "sqs+https"), "--timeout", "3")
    assert tls.rc == 3 and "TLS" in one_line(tls.err), tls


def test_missing_credentials_for_aws_are_exit_3_in_one_line_before_any_request(bare: QctlRunner) -> None:
    run = bare("stats", "-u", "sqs://eu-west-1", "orders")
    assert run.rc == 3, run
    line = one_line(run.err)
    assert "no AWS credentials" in line and "aws sso login" in line
    # No region anywhere: exit 2, it is the command line or the config that lacks it.
    no_region = bare("stats", "-u", "sqs://")
    assert no_region.rc == 2 and "region" in one_line(no_region.err), no_region


def test_a_compatible_server_without_credentials_gets_unsigned_requests(sqs: SQSDriver, bare: QctlRunner,
                                                                        names: Any) -> None:
    name = names("unsigned")
    sqs.make_queue(name, [])
    run = bare("stats", "-u", sqs.url, name, "-o", "json")
    assert run.rc == 0 and run.json()[0]["queue"] == name, run


def test_profile_table_settings_reach_the_client(sqs: SQSDriver, bare: QctlRunner, names: Any,
                                                 tmp_path: Path) -> None:
    """[profiles.x.sqs]: endpoint_url for sqs://REGION (a VPC endpoint, here ElasticMQ), aws_profile from the
    shared credentials file; an aws_profile that does not exist is exit 2."""
    name = names("profiled")
    sqs.make_queue(name, [])
    credentials = tmp_path / "credentials"
    credentials.write_text("[qctl-test]\naws_access_key_id = AKIDQCTL\naws_secret_access_key = secret\n")
    config = tmp_path / "config.toml"
    config.write_text(f"""
[profiles.local]
url = "sqs://eu-central-1"
[profiles.local.sqs]
endpoint_url = "{sqs.endpoint}"
aws_profile = "qctl-test"
[profiles.broken]
url = "sqs://eu-central-1"
[profiles.broken.sqs]
aws_profile = "no-such-profile"
""")
    env = {"QCTL_CONFIG": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    run = bare("stats", "-p", "local", name, "-o", "json", env=env)
    assert run.rc == 0 and run.json()[0]["queue"] == name, run
    broken = bare("stats", "-p", "broken", name, env=env)
    assert broken.rc == 2 and "no-such-profile" in one_line(broken.err), broken


def test_queue_names_are_checked_before_any_request(qctl: QctlRunner) -> None:
    for bad in ("has.dot", "a" * 81, "spaces here", ".fifo"):
        run = qctl("peek", "-u", f"sqs+http://127.0.0.1:{free_port()}", bad)
        assert run.rc == 2 and "not an SQS queue name" in one_line(run.err), run  # 2, not 3: nothing was sent


def test_a_queue_url_works_as_queue(sqs: SQSDriver, q: QctlRunner, names: Any) -> None:
    name = names("byurl")
    sqs.make_queue(name, [])
    run = q("stats", sqs.queue_url(name), "-o", "json")
    assert run.rc == 0 and run.json()[0]["queue"] == name, run


def test_without_the_extra_sqs_urls_are_exit_2(qctl: QctlRunner, tmp_path: Path) -> None:
    """A real process whose botocore cannot be imported (a sitecustomize that hides it, as if qctl[sqs] was
    never installed): exit 2 naming the extra, and other backends still start."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'botocore' or name.startswith('botocore.'):\n"
        "            raise ModuleNotFoundError(f\"No module named {name!r}\", name=name)\n"
        "sys.meta_path.insert(0, Hide())\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    run = qctl("stats", "-u", "sqs+http://127.0.0.1:9324", env=env)
    assert run.rc == 2, run
    assert "qctl[sqs]" in one_line(run.err)
    assert qctl("--version", env=env).rc == 0


# --- AWS's own refusals, which ElasticMQ never sends: the one error helper alone -------------------------


def client_error(code: str, status: int, message: str = "m") -> Any:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PurgeQueue")


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("AWS.SimpleQueueService.NonExistentQueue", 400, QueueNotFound),
    ("QueueDoesNotExist", 400, QueueNotFound),
    ("AWS.SimpleQueueService.PurgeQueueInProgress", 400, BrokerUnavailable),
    ("InvalidClientTokenId", 403, BrokerUnavailable),
    ("SignatureDoesNotMatch", 403, BrokerUnavailable),
    ("AccessDenied", 403, BrokerUnavailable),
    ("ExpiredToken", 400, BrokerUnavailable),
    ("RequestThrottled", 400, BrokerUnavailable),
    ("InternalError", 500, BrokerUnavailable),
    ("InvalidParameterValue", 400, UsageError),
])
def test_aws_error_codes_map_to_the_contract(code: str, status: int, kind: type) -> None:
    from qctl.adapters.sqs.errors import translate

    error = translate(client_error(code, status), "sqs://eu-west-1", "purge 'orders'")
    assert type(error) is kind
    if "PurgeQueueInProgress" in code:
        assert "60 seconds" in str(error)


def test_botocore_exceptions_map_to_the_contract() -> None:
    from botocore import exceptions as bex

    from qctl.adapters.sqs.errors import translate

    cases = [(bex.NoCredentialsError(), BrokerUnavailable), (bex.EndpointConnectionError(endpoint_url="x"),
             BrokerUnavailable), (bex.ConnectTimeoutError(endpoint_url="x"), BrokerUnavailable),
             (bex.ReadTimeoutError(endpoint_url="x"), BrokerUnavailable),
             (bex.ParamValidationError(report="bad"), UsageError), (bex.ProfileNotFound(profile="p"), UsageError),
             (bex.NoRegionError(), UsageError)]
    for exc, kind in cases:
        assert type(translate(exc, "sqs://eu-west-1", "stats")) is kind, exc
