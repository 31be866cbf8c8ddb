"""The management client's one keep-alive connection: reused across requests, threads and ``stats`` calls,
reopened when the server closed it, and its answers read as before (404 None, 401/403 refused, JSON)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika
import pytest

from qctl.adapters.rabbitmq.adapter import RabbitMQAdapter
from qctl.adapters.rabbitmq.errors import ManagementUnavailable
from qctl.adapters.rabbitmq.management import Management
from qctl.options import ConnectOptions
from qctl.urls import parse


class FakeAPI(ThreadingHTTPServer):
    """An HTTP/1.1 server answering ``{"path": ...}``; every ``drop_every``-th answer it closes the connection
    after answering without saying so (as a server does when a keep-alive connection has idled too long)."""

    daemon_threads = True

    def __init__(self, drop_every: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.drop_every = drop_every
        self.requests = 0
        self.connections = 0
        self.open = self.most_open = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeAPI

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.open += 1
            self.server.most_open = max(self.server.most_open, self.server.open)

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.open -= 1

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests += 1
            drop = self.server.drop_every and self.server.requests % self.server.drop_every == 0
        status = {"/api/missing": 404, "/api/secret": 401}.get(self.path.split("?")[0], 200)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if drop:
            self.close_connection = True  # no "Connection: close": the client finds out on its next request

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture()
def fake() -> Iterator[FakeAPI]:
    server = FakeAPI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client(server: FakeAPI) -> Management:
    return Management(ConnectOptions(url=parse("amqp://qctl:pw@127.0.0.1:1/%2F"), timeout=5,
                                     management_url=f"http://127.0.0.1:{server.server_address[1]}"))


def test_requests_share_one_connection_even_from_threads(fake: FakeAPI) -> None:
    management = client(fake)
    with ThreadPoolExecutor(max_workers=4) as pool:  # as stats asks for dead-letter candidates: 4 at a time
        answers = list(pool.map(lambda i: management.get(f"/api/queues/%2F/q{i}"), range(40)))
    management.close()
    assert answers == [{"path": f"/api/queues/%2F/q{i}"} for i in range(40)]
    assert (fake.requests, fake.connections, fake.most_open, management.connection.opened) == (40, 1, 1, 1)


def test_a_connection_the_server_closed_is_replaced_and_the_request_sent_again(fake: FakeAPI) -> None:
    fake.drop_every = 3
    management = client(fake)
    answers = [management.get("/api/whoami", {"n": i}) for i in range(10)]
    management.close()
    assert answers == [{"path": f"/api/whoami?n={i}"} for i in range(10)]
    # dropped after answers 3, 6 and 9: four connections, and every request answered once
    assert (fake.requests, fake.connections, management.connection.opened) == (10, 4, 4)


def test_answers_read_as_before_on_the_kept_connection(fake: FakeAPI) -> None:
    management = client(fake)
    assert management.get("/api/missing") is None
    with pytest.raises(ManagementUnavailable, match=r"refused the credentials \(401\)"):
        management.get("/api/secret")
    assert management.get("/api/whoami") == {"path": "/api/whoami"}
    management.close()
    assert (fake.connections, management.connection.opened) == (1, 1)


def test_an_unreachable_api_is_still_one_line(fake: FakeAPI) -> None:
    management = client(fake)
    fake.shutdown()
    fake.server_close()
    with pytest.raises(ManagementUnavailable, match="is unreachable"):
        management.get("/api/whoami")


@pytest.fixture()
def queue(amqp_url: str) -> Iterator[str]:
    name = f"mgmt-conn-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_declare(name, durable=True)
    channel.basic_publish("", name, b"x")
    yield name
    channel.queue_delete(name)
    connection.close()


def test_stats_calls_of_one_adapter_open_one_management_connection(amqp_url: str, management_url: str,
                                                                   queue: str) -> None:
    adapter = RabbitMQAdapter(ConnectOptions(url=parse(amqp_url), management_url=management_url))
    try:
        rows = [adapter.stats([queue])[0] for _ in range(5)]  # ~20 requests each: the candidates 4 at a time
    finally:
        adapter.close()
    assert [row.depth for row in rows] == [1] * 5
    assert adapter.management.connection.opened == 1
