"""SQS's JSON protocol spoken directly, for the requests qctl makes by the thousand, on plain-HTTP endpoints.

botocore spends about 0.6 ms of CPU on every request: its event hooks, the
model-driven serializer and parser, endpoint rules, urllib3 and the email
package parsing response headers.  A compatible server on the same host
(ElasticMQ) answers a GetQueueAttributes in about as much, so half of a
1,000-queue ``stats`` went to botocore's machinery.  For the operations in
:data:`OPERATIONS`, on an endpoint that is plain ``http://`` with no proxy
configured for it (``sqs+http://HOST:PORT``, or an ``endpoint_url`` of
``http://``), requests are built and read here instead: JSON in, JSON out,
over one keep-alive HTTP/1.1 connection per thread, written and read here
(about 0.06 ms of CPU a request; ``http.client`` alone costs 0.19 ms).  Everything else -- HTTPS (AWS, VPC endpoints,
``sqs+https://``), proxies, the other operations -- stays with botocore and
its TLS, proxy and endpoint rules; there a network round trip dwarfs the
client's CPU anyway.

What stays the same as botocore's:

* the request: ``POST /``, ``Content-Type: application/x-amz-json-1.0``,
  ``X-Amz-Target: AmazonSQS.<Operation>``, ``x-amzn-query-mode: true``, the
  body ``json.dumps`` of the parameters with blobs (``BinaryValue``)
  base64-encoded; signed with botocore's own SigV4 signer when there are
  credentials (refreshable ones are refreshed by it), unsigned otherwise;
* the answer: the JSON body, with ReceiveMessage's binary attribute values
  decoded to bytes; an error status raises botocore's ``ClientError`` with
  the code botocore would give (the ``x-amzn-query-error`` code when the
  server sends one, else ``__type``'s last part, else the HTTP status), so
  :mod:`.errors` treats both paths alike;
* at most :data:`ATTEMPTS` attempts, retrying what botocore's ``standard``
  mode retries (connection errors, timeouts, HTTP 500/502/503/504,
  throttling and transient codes) after its backoff (random, up to 1 s, then
  2 s); connection failures raise botocore's exceptions
  (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
  ConnectionClosedError).

``tests/sqs/test_wire.py`` checks every operation here against botocore's
answer for the same request on ElasticMQ.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore import exceptions as bex  # type: ignore[import-untyped]
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.utils import get_environ_proxies  # type: ignore[import-untyped]

# botocore's method name -> the SQS operation, for the requests that go through here.
OPERATIONS = {
    "get_queue_attributes": "GetQueueAttributes",
    "get_queue_url": "GetQueueUrl",
    "list_queues": "ListQueues",
    "list_dead_letter_source_queues": "ListDeadLetterSourceQueues",
    "receive_message": "ReceiveMessage",
    "send_message_batch": "SendMessageBatch",
    "delete_message_batch": "DeleteMessageBatch",
    "change_message_visibility_batch": "ChangeMessageVisibilityBatch",
}
ATTEMPTS = 3
RETRY_STATUS = frozenset({500, 502, 503, 504})
# botocore.retries.standard: throttling and transient error codes.
RETRY_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
})
MAX_BACKOFF = 20.0
MAX_LINE = 65_536  # http.client's limits on an answer's lines and headers
MAX_HEADERS = 100


def usable(endpoint_url: str | None) -> bool:
    """Whether requests to this endpoint may go through here: plain http, no proxy for it."""
    if not endpoint_url or urlsplit(endpoint_url).scheme != "http":
        return False
    return not get_environ_proxies(endpoint_url).get("http")


class _Retry(Exception):
    """An attempt that botocore's standard mode would retry; ``error`` is what to raise if none is left."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Closed(Exception):
    """The server closed the connection before a whole answer came (http.client's RemoteDisconnected)."""


@dataclass(slots=True)
class _Answer:
    status: int
    headers: dict[bytes, bytes]  # lower-cased names
    body: bytes


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request written in one piece, the answer read by hand.

    ``http.client`` costs ~190 us of CPU per request here, most of it the ``email`` package parsing three
    response headers; this costs ~60 us.  It reads what an SQS answer can be: a status line (1xx skipped),
    at most :data:`MAX_HEADERS` headers of at most :data:`MAX_LINE` bytes, and a body by Content-Length,
    chunked, or up to the close (HTTP/1.0)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.file: Any = None

    def connect(self) -> None:
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.file = self.sock.makefile("rb")

    def dropped(self) -> bool:
        """Whether the idle connection has something to read: the server closed it (or sent what no request
        asked for).  As urllib3 checks before reusing a connection, so that a server's idle timeout costs a
        reconnect, not an attempt."""
        if self.sock is None:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def exchange(self, request: bytes) -> _Answer:
        assert self.sock is not None
        self.sock.sendall(request)
        while True:
            line = self._line()
            if not line:
                raise _Closed("the server closed the connection without an answer")
            version, _, rest = line.partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/") or not code.isdigit():
                raise http.client.BadStatusLine(line.decode("latin-1", "replace"))
            headers = self._headers()
            status = int(code)
            if status >= 200 or status == 101:
                break
        connection = headers.get(b"connection", b"").lower()
        keep = b"keep-alive" in connection if version == b"HTTP/1.0" else b"close" not in connection
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._chunked()
        elif b"content-length" in headers:
            length = int(headers[b"content-length"])
            body = self.file.read(length)
            if len(body) < length:
                raise _Closed(f"the answer ended after {len(body)} of {length} bytes")
        else:
            body, keep = self.file.read(), False
        if not keep:
            self.close()
        return _Answer(status, headers, body)

    def _line(self) -> bytes:
        line: bytes = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _headers(self) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._line().split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            chunk = self.file.read(size)
            if len(chunk) < size:
                raise _Closed("the answer ended inside a chunk")
            parts.append(chunk)
            self._line()

    def close(self) -> None:
        file, sock, self.file, self.sock = self.file, self.sock, None, None
        for thing in (file, sock):
            if thing is not None:
                try:
                    thing.close()
                except OSError:
                    pass


class Wire:
    """JSON-protocol requests to one plain-HTTP SQS endpoint, one keep-alive connection per thread."""

    def __init__(self, endpoint_url: str, *, region: str, credentials: Any, timeout: float, user_agent: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(endpoint_url)
        self.endpoint_url = endpoint_url
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.url = f"http://{parts.netloc.rsplit('@', 1)[-1]}{self.path}"
        # As botocore's signer names the host: without the default port.
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = shown if self.port == 80 else f"{shown}:{self.port}"
        self.region = region
        self.credentials = credentials  # None: unsigned
        self.timeout = timeout
        self.user_agent = user_agent
        self.sleep = sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self.requests = 0  # attempts made, for tests and benchmarks

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One SQS request: the answer's JSON as a dict, or botocore's exception."""
        body = json.dumps({k: v for k, v in params.items() if v is not None}, default=_blob).encode("utf-8")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                answer = self._attempt(operation, body)
            except _Retry as retry:
                if attempt == ATTEMPTS:
                    raise retry.error from None
                self.sleep(min(random.random() * 2 ** (attempt - 1), MAX_BACKOFF))
                continue
            if operation == "ReceiveMessage":
                _decode_binary(answer)
            return answer
        raise AssertionError("unreachable")

    def _attempt(self, operation: str, body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{operation}",
                   "x-amzn-query-mode": "true", "User-Agent": self.user_agent}
        if self.credentials is not None:
            headers = self._signed(headers, body)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\n{head}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        conn = self._connection()
        with self._lock:
            self.requests += 1
        if conn.dropped():
            conn.close()
        if conn.sock is None:
            try:
                conn.connect()
            except TimeoutError as exc:
                conn.close()
                raise _Retry(bex.ConnectTimeoutError(endpoint_url=self.url, error=exc)) from None
            except OSError as exc:
                conn.close()
                raise _Retry(bex.EndpointConnectionError(endpoint_url=self.url, error=exc)) from None
        try:
            answer = conn.exchange(request)
        except TimeoutError as exc:
            conn.close()
            raise _Retry(bex.ReadTimeoutError(endpoint_url=self.url, error=exc)) from None
        except (_Closed, ConnectionError) as exc:
            conn.close()
            raise _Retry(bex.ConnectionClosedError(endpoint_url=self.url, error=exc)) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            conn.close()
            raise _Retry(bex.HTTPClientError(error=exc)) from None
        if 200 <= answer.status < 300:
            return json.loads(answer.body) if answer.body else {}
        error, code = self._error(operation, answer)
        if answer.status in RETRY_STATUS or code in RETRY_CODES:
            raise _Retry(error)
        raise error

    def _signed(self, headers: dict[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method="POST", url=self.url, data=body, headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), "sqs", self.region).add_auth(request)
        return dict(request.headers.items())

    def _error(self, operation: str, answer: _Answer) -> tuple[Exception, str]:
        """botocore's ClientError for an error answer (parsed as botocore's JSON parser does), and its code."""
        try:
            parsed = json.loads(answer.body) if answer.body else {}
        except ValueError:
            parsed = {"message": answer.body.decode("utf-8", "replace")}
        if not isinstance(parsed, dict):
            parsed = {}
        message = parsed.get("message", parsed.get("Message", ""))
        code = str(parsed.get("__type") or answer.status)
        code = code.split(":", 1)[0].rsplit("#", 1)[-1]
        query = answer.headers.get(b"x-amzn-query-error", b"").decode("latin-1").split(";")
        if len(query) == 2 and query[0]:
            code = query[0]
        error: Exception = bex.ClientError({"Error": {"Code": code, "Message": message},
                                            "ResponseMetadata": {"HTTPStatusCode": answer.status}}, operation)
        return error, code

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self.host, self.port, self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _blob(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decode_binary(answer: dict[str, Any]) -> None:
    """ReceiveMessage's blobs (binary message attribute values) as bytes, as botocore's parser gives them."""
    for message in answer.get("Messages") or []:
        for value in (message.get("MessageAttributes") or {}).values():
            if isinstance(value.get("BinaryValue"), str):
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
            if isinstance(value.get("BinaryListValues"), list):
                value["BinaryListValues"] = [base64.b64decode(v) for v in value["BinaryListValues"]]
