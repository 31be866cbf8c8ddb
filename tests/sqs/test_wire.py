"""The direct JSON-protocol path (qctl.adapters.sqs.wire) answers exactly as botocore does, on ElasticMQ.

Each operation the wire speaks is sent both ways with the same parameters and the answers compared
(botocore's ResponseMetadata aside); errors come out as the same qctl errors; retries and signing are
checked against small local HTTP servers that count what they were sent.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import exceptions as bex
from botocore.credentials import Credentials

from qctl.adapters.sqs import wire
from qctl.adapters.sqs.client import Connection
from qctl.errors import BrokerUnavailable, QueueNotFound
from qctl.options import ConnectOptions
from qctl.urls import parse as parse_url
from tests.sqs.driver import SQSDriver


@pytest.fixture()
def conn(sqs: SQSDriver) -> Iterator[Connection]:
    connection = Connection(ConnectOptions(url=parse_url(sqs.url), timeout=30))
    assert connection.wire is not None  # a plain-HTTP endpoint without a proxy
    yield connection
    connection.close()


def both(conn: Connection, operation: str, **params: Any) -> tuple[Any, Any]:
    """(the wire's answer, botocore's answer without ResponseMetadata) for the same request."""
    direct = conn.call(operation, "test", **params)
    answer = dict(getattr(conn.client, operation)(**params))
    answer.pop("ResponseMetadata", None)
    return direct, answer


def test_every_operation_answers_as_botocore_does(sqs: SQSDriver, conn: Connection, names: Any) -> None:
    name, dlq = names("wire"), names("wire-dlq")
    sqs.create(dlq)
    url = sqs.create(name, dlq=dlq, max_receive_count=5)
    for operation, params in [
        ("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["All"]}),
        ("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["RedrivePolicy", "QueueArn"]}),
        ("list_queues", {"QueueNamePrefix": name, "MaxResults": 1000}),
        ("get_queue_url", {"QueueName": name}),
        ("list_dead_letter_source_queues", {"QueueUrl": sqs.queue_url(dlq), "MaxResults": 1000}),
    ]:
        direct, answer = both(conn, operation, **params)
        assert direct == answer, operation
    # Sends: text with characters outside the BMP, every attribute type, binary that is not UTF-8; the same
    # batch to one queue each way.
    other = names("wire-other")
    urls = {"wire": url, "botocore": sqs.create(other)}
    entries = [{"Id": str(i), "MessageBody": f"b{i} \u00e9\U0001f600 <&>\"'", "MessageAttributes": {
        "text": {"DataType": "String", "StringValue": f"t\u00e9{i}"},
        "number": {"DataType": "Number", "StringValue": "1.50"},
        "raw": {"DataType": "Binary", "BinaryValue": bytes([0xFF, 0x00, i])},
        "custom": {"DataType": "String.json", "StringValue": "{\"a\": 1}"}}} for i in range(4)]
    direct = conn.call("send_message_batch", "test", QueueUrl=urls["wire"], Entries=entries)
    answer = conn.client.send_message_batch(QueueUrl=urls["botocore"], Entries=entries)
    assert len(direct["Successful"]) == 4 and not direct.get("Failed")
    same = ("Id", "MD5OfMessageBody", "MD5OfMessageAttributes")  # the MessageIds are new each time
    assert [{k: e[k] for k in same} for e in direct["Successful"]] == \
           [{k: e[k] for k in same} for e in answer["Successful"]]
    # Receives: the same 4 messages either way (the wire's binary attribute values decoded to bytes).
    received: dict[str, list[dict[str, Any]]] = {"wire": [], "botocore": []}
    params = {"MaxNumberOfMessages": 10, "VisibilityTimeout": 600, "MessageSystemAttributeNames": ["All"],
              "MessageAttributeNames": ["All"]}
    for _ in range(20):
        if len(received["wire"]) < 4:
            received["wire"] += conn.call("receive_message", "test", QueueUrl=urls["wire"], **params).get(
                "Messages") or []
        if len(received["botocore"]) < 4:
            received["botocore"] += conn.client.receive_message(QueueUrl=urls["botocore"], **params).get(
                "Messages") or []
    varying = {"ReceiptHandle", "MessageId", "Attributes"}

    def comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in m.items() if k not in varying} for m in messages),
                      key=lambda m: str(m["Body"]))

    assert len(received["wire"]) == 4 and comparable(received["wire"]) == comparable(received["botocore"])
    assert {m["MessageAttributes"]["raw"]["BinaryValue"] for m in received["wire"]} == \
           {bytes([0xFF, 0x00, i]) for i in range(4)}
    assert {k for m in received["wire"] for k in m["Attributes"]} == \
           {k for m in received["botocore"] for k in m["Attributes"]}
    # Visibility changes and deletes, including an entry SQS refuses (a receipt handle it never gave).
    handles = {path: [m["ReceiptHandle"] for m in got] for path, got in received.items()}
    for operation, extra in [("change_message_visibility_batch", {"VisibilityTimeout": 600}),
                             ("delete_message_batch", {})]:
        answers = []
        for path in ("wire", "botocore"):
            entries_ = [{"Id": str(i), "ReceiptHandle": h, **extra} for i, h in enumerate(handles[path])]
            entries_.append({"Id": "bad", "ReceiptHandle": "not-a-handle", **extra})
            if path == "wire":
                answer = conn.call(operation, "test", QueueUrl=urls[path], Entries=entries_)
            else:
                answer = dict(getattr(conn.client, operation)(QueueUrl=urls[path], Entries=entries_))
                answer.pop("ResponseMetadata", None)
            answers.append(answer)
        assert answers[0] == answers[1], operation
        assert [e["Id"] for e in answers[0]["Failed"]] == ["bad"]
    assert sqs.counts(name) == (0, 0) and sqs.counts(other) == (0, 0)


def test_errors_are_the_same_qctl_errors_either_way(sqs: SQSDriver, conn: Connection) -> None:
    missing = sqs.endpoint + "/000000000000/qctl-no-such-queue-" + sqs.unique("x")
    with pytest.raises(QueueNotFound) as direct:
        conn.call("get_queue_attributes", "attributes", QueueUrl=missing, AttributeNames=["All"])
    with pytest.raises(bex.ClientError) as raw:
        conn.client.get_queue_attributes(QueueUrl=missing, AttributeNames=["All"])
    assert raw.value.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
    assert "queue not found" in str(direct.value)
    with pytest.raises(QueueNotFound):  # a name that does not exist: the same exit 4 through url_of
        conn.url_of("qctl-no-such-queue-" + sqs.unique("y"))


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next of ``server.answers`` (status, headers, body); records requests."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        server: Any = self.server
        length = int(self.headers.get("Content-Length") or 0)
        server.requests.append((dict(self.headers.items()), self.rfile.read(length)))
        status, headers, body = server.answers[min(len(server.requests), len(server.answers)) - 1]
        self.send_response(status)
        framed = "Transfer-Encoding" in headers or headers.get("Connection") == "close"
        for key, value in ({} if framed else {"Content-Length": str(len(body))}).items() | headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = headers.get("Connection") == "close"

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture()
def recorder() -> Iterator[Any]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests, server.answers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def wire_to(server: Any, **kwargs: Any) -> tuple[wire.Wire, list[float]]:
    slept: list[float] = []
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    options = {"region": "us-east-1", "credentials": None, "timeout": 5, "user_agent": "test", **kwargs}
    return wire.Wire(endpoint, sleep=slept.append, **options), slept


OK = (200, {"Content-Type": "application/x-amz-json-1.0"}, b'{"QueueUrls": ["http://h/1/q"]}')
BUSY = (503, {"Content-Type": "application/x-amz-json-1.0"}, b'{"__type": "com.amazonaws.sqs#ServiceUnavailable"}')


def test_5xx_is_retried_as_botocore_standard_mode_does_at_most_three_attempts(recorder: Any) -> None:
    recorder.answers = [BUSY, BUSY, OK]
    direct, slept = wire_to(recorder)
    assert direct.call("ListQueues", {"MaxResults": 1}) == {"QueueUrls": ["http://h/1/q"]}
    assert len(recorder.requests) == 3 and len(slept) == 2 and slept[0] <= 1 and slept[1] <= 2
    assert len(direct._connections) == 1  # one keep-alive connection carried all three
    recorder.requests.clear()
    recorder.answers = [BUSY]
    with pytest.raises(bex.ClientError) as error:
        direct.call("ListQueues", {"MaxResults": 1})
    assert len(recorder.requests) == 3 and error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    direct.close()


def test_chunked_and_close_delimited_answers_are_read_whole(recorder: Any) -> None:
    recorder.answers = [
        (200, {"Transfer-Encoding": "chunked"},
         b'9\r\n{"QueueUr\r\nb;ext=1\r\nls": ["a"]}\r\n0\r\nX-Trailer: 1\r\n\r\n'),
        (200, {"Connection": "close"}, b'{"QueueUrls": ["b"]}'),
        OK,
    ]
    direct, _ = wire_to(recorder)
    assert direct.call("ListQueues", {}) == {"QueueUrls": ["a"]}
    assert direct.call("ListQueues", {}) == {"QueueUrls": ["b"]}  # read up to the close
    assert direct.call("ListQueues", {}) == {"QueueUrls": ["http://h/1/q"]}  # a new connection after the close
    assert direct.requests == 3 and len(recorder.requests) == 3
    direct.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_attempt_lost(recorder: Any) -> None:
    recorder.answers = [OK]
    direct, slept = wire_to(recorder)
    direct.call("ListQueues", {})
    conn = direct._connections[0]
    assert conn.sock is not None
    conn.sock.shutdown(socket.SHUT_RD)  # as if the server had closed it: readable, at its end
    assert conn.dropped()
    assert direct.call("ListQueues", {}) == {"QueueUrls": ["http://h/1/q"]}
    assert direct.requests == 2 and slept == []  # no retry, no backoff
    direct.close()


def test_a_client_error_is_not_retried_and_its_query_code_wins(recorder: Any) -> None:
    recorder.answers = [(400, {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
                         b'{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}')]
    direct, _ = wire_to(recorder)
    with pytest.raises(bex.ClientError) as error:
        direct.call("GetQueueAttributes", {"QueueUrl": "http://h/1/q", "AttributeNames": ["All"]})
    assert error.value.response["Error"] == {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}
    assert len(recorder.requests) == 1
    direct.close()


def test_requests_are_botocore_s_json_protocol_and_signed_when_there_are_credentials(recorder: Any) -> None:
    recorder.answers = [OK]
    direct, _ = wire_to(recorder, credentials=Credentials("AKIDQCTL", "secret", "token"))
    direct.call("SendMessageBatch", {"QueueUrl": "http://h/1/q", "Entries": [
        {"Id": "0", "MessageBody": "x", "MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": b"\xff"}}}],
        "Unset": None})
    headers, body = recorder.requests[0]
    assert headers["X-Amz-Target"] == "AmazonSQS.SendMessageBatch"
    assert headers["Content-Type"] == "application/x-amz-json-1.0" and headers["x-amzn-query-mode"] == "true"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDQCTL/")
    assert "/us-east-1/sqs/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "token"
    sent = json.loads(body)
    assert "Unset" not in sent  # None is left out, as botocore leaves it out
    assert sent["Entries"][0]["MessageAttributes"]["b"]["BinaryValue"] == base64.b64encode(b"\xff").decode()
    direct.close()
    unsigned, _ = wire_to(recorder)
    unsigned.call("ListQueues", {})
    assert "Authorization" not in recorder.requests[1][0]
    unsigned.close()


def test_a_closed_port_is_botocore_s_connection_error_after_three_attempts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slept: list[float] = []
    direct = wire.Wire(f"http://127.0.0.1:{port}", region="us-east-1", credentials=None, timeout=5,
                       user_agent="test", sleep=slept.append)
    with pytest.raises(bex.EndpointConnectionError):
        direct.call("ListQueues", {})
    assert direct.requests == 3 and len(slept) == 2
    conn = Connection(ConnectOptions(url=parse_url(f"sqs+http://127.0.0.1:{port}"), timeout=5))
    conn._wire, conn._wire_decided = direct, True  # no backoff sleeps in the test
    with pytest.raises(BrokerUnavailable, match="cannot reach SQS"):
        conn.call("list_queues", "list queues")


def test_https_and_proxied_endpoints_stay_with_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    assert wire.usable("http://127.0.0.1:9324")
    assert not wire.usable("https://sqs.eu-west-1.amazonaws.com")
    assert not wire.usable(None)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert not wire.usable("http://127.0.0.1:9324")
