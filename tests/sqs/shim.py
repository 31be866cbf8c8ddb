"""A pass-through HTTP front for ElasticMQ that gives chosen queues a MaximumMessageSize, and counts sends.

ElasticMQ 1.7.1 has no per-queue MaximumMessageSize: CreateQueue and
SetQueueAttributes accept it and forget it, GetQueueAttributes never returns
it, and only its global strict limit (1 MiB) is enforced.  AWS queues may set
any size from 1,024 to 1,048,576 bytes (262,144 was the default before 2025).
To test that qctl reads a queue's own limit, every request goes to ElasticMQ
unchanged and every answer comes back unchanged, except that a
GetQueueAttributes answer for a queue named in ``max_sizes`` also carries
``MaximumMessageSize`` (when asked for, or ``All``), as AWS would answer.
The messages themselves are sent to and stored by ElasticMQ, and the operations
qctl asked for are recorded (``operations``), so a test can show that nothing
was sent before a refusal.

Only the JSON protocol (``X-Amz-Target: AmazonSQS.<Operation>``, what botocore
speaks to SQS) is understood; anything else is answered 400 so a test fails
loudly instead of silently bypassing the shim.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class Shim:
    def __init__(self, upstream: str, max_sizes: dict[str, int]) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.max_sizes = max_sizes
        self.operations: list[str] = []
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"sqs+http://127.0.0.1:{self.server.server_address[1]}"

    def sent(self) -> list[str]:
        with self.lock:
            return [name for name in self.operations if name.startswith("SendMessage")]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        shim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target") or ""
                if not target.startswith("AmazonSQS."):
                    self._answer(400, {"Content-Type": "text/plain"}, b"the shim speaks SQS's JSON protocol only")
                    return
                operation = target.removeprefix("AmazonSQS.")
                with shim.lock:
                    shim.operations.append(operation)
                upstream = http.client.HTTPConnection(*shim.upstream, timeout=60)
                try:
                    upstream.request("POST", self.path, body=body, headers={
                        name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP})
                    response = upstream.getresponse()
                    data = response.read()
                    headers = {name: value for name, value in response.getheaders()
                               if name.lower() not in HOP_BY_HOP}
                finally:
                    upstream.close()
                if operation == "GetQueueAttributes" and response.status == 200:
                    data = shim._with_size(json.loads(body or b"{}"), data)
                self._answer(response.status, headers, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def _with_size(self, request: dict[str, Any], data: bytes) -> bytes:
        name = str(request.get("QueueUrl") or "").rstrip("/").rsplit("/", 1)[-1]
        wanted = request.get("AttributeNames") or []
        if name not in self.max_sizes or not ({"All", "MaximumMessageSize"} & set(wanted)):
            return data
        answer = json.loads(data or b"{}")
        answer.setdefault("Attributes", {})["MaximumMessageSize"] = str(self.max_sizes[name])
        return json.dumps(answer).encode()


@contextmanager
def shim(upstream: str, max_sizes: dict[str, int]) -> Iterator[Shim]:
    """A running :class:`Shim` in front of ``upstream`` (``http://host:port``), stopped afterwards."""
    front = Shim(upstream, max_sizes)
    thread = threading.Thread(target=front.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.server.shutdown()
        front.server.server_close()
