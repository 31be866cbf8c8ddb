"""One connection per command: botocore's client (created on first use), the direct path, and the thread pool.

Where it connects
    ``sqs://REGION`` is AWS (``endpoint_url`` in the profile's
    ``[profiles.NAME.sqs]`` table overrides the endpoint, e.g. a VPC endpoint;
    the region may also come from that table's ``region`` or the AWS config).
    ``sqs+http://HOST:PORT`` and ``sqs+https://HOST:PORT`` are an SQS-compatible
    server (ElasticMQ, LocalStack); ``region`` is then only what requests are
    signed for (``us-east-1`` unless set).

Credentials
    The URL's ``ACCESS_KEY_ID:SECRET@`` if given (the secret is masked like any
    password), else botocore's whole chain: environment, shared files, the
    table's ``aws_profile``, SSO, container and instance roles.  For AWS, none
    found is exit 3 before any request.  A compatible server with none found
    gets unsigned requests: ElasticMQ and friends accept them, and a server
    that wants credentials says so (exit 3 again).

Two paths, one door
    Every request goes through :meth:`Connection.call`.  On a plain-HTTP
    endpoint without a proxy, the requests qctl makes by the thousand
    (:data:`.wire.OPERATIONS`: GetQueueAttributes, ListQueues, the batches,
    ReceiveMessage...) go through :mod:`.wire`, SQS's JSON protocol spoken
    directly (a third of botocore's CPU per request); the rest, and every
    request to an HTTPS endpoint (AWS), through botocore's client, which is
    then only created when first needed.  Both resolve the region, the
    endpoint and the credentials once, the same way (:meth:`Connection._resolve`).

Bounds
    ``--timeout`` is the connect and read timeout of every attempt; botocore's
    ``standard`` retry mode (and the direct path, the same way) makes at most
    three attempts (throttling, 5xx, dropped connections).  Calls that fan out
    (stats) run on a pool of :data:`POOL` threads: botocore clients are
    thread-safe, and each call is one HTTP round trip of which the GIL holds
    only the client's own part -- against AWS, where a round trip is
    milliseconds, the pool is what makes 1,000 queues cost ~1,000 / POOL round
    trips.  A pass's receives and deletes, and a destination's sends, run on
    pools of their own (:mod:`.reader`, :mod:`.destination`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore import UNSIGNED
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from qctl import __version__, tls
from qctl.adapters.sqs import names, wire
from qctl.adapters.sqs.errors import CREDENTIAL_HINT, translated
from qctl.adapters.sqs.wire import Wire
from qctl.errors import BrokerUnavailable, QueueNotFound, UsageError
from qctl.options import ConnectOptions
from qctl.urls import redact

POOL = 16  # fan-out calls: a stats' GetQueueAttributes, visibility changes
READ_THREADS = 20  # a pass's receives and deletes (reader.py): a chunk's receives and a chunk's deletes at once
SEND_THREADS = 10  # SendMessageBatch to standard queues, shared by every destination (destination.py)
# botocore's urllib3 pool: every thread that may call at once (a bigger burst would open and drop connections,
# with a "Connection pool is full" warning on stderr).
CONNECTIONS = POOL + READ_THREADS + SEND_THREADS + 2
ATTEMPTS = 3
SIGNING_REGION = "us-east-1"  # what requests to a compatible server are signed for, unless `region` says otherwise
T = TypeVar("T")
R = TypeVar("R")


# A few requests run one after another on this thread: each pool thread holds a connection of its own, and
# a watch of a queue and its DLQ should hold one connection, not one per request (bench/soak.py checks).
SERIAL_UPTO = 4


@dataclass(frozen=True, slots=True)
class _Settings:
    session: Any
    region: str
    endpoint_url: str | None
    config: dict[str, Any]
    verify: Any
    keys: dict[str, Any]  # static credentials for create_client
    credentials: Any  # what requests are signed with; None: unsigned


class Connection:
    """The adapter's botocore client, queue URLs it learnt, and the pool its fan-out calls run on."""

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self.where = redact(str(options.url))
        self.timeout = options.timeout
        self.aws = options.url.scheme == "sqs"
        self._client: Any = None
        self._settings: _Settings | None = None
        self._wire: Wire | None = None
        self._wire_decided = False
        self._executor: ThreadPoolExecutor | None = None
        self._senders: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._urls: dict[str, str] = {}
        # Long polls (WaitTimeSeconds) make a receive wait on the server: only when --timeout leaves room.
        self.long_poll = 1 if self.timeout >= 3 else 0

    @property
    def client(self) -> Any:
        """botocore's client, created on first use (a stats on a plain-HTTP endpoint may never need it)."""
        with self._lock:
            if self._client is None:
                settings = self._settings_locked()
                with translated(self.where, "connect", self.timeout):
                    self._client = settings.session.create_client(
                        "sqs", region_name=settings.region, endpoint_url=settings.endpoint_url,
                        config=Config(**settings.config), verify=settings.verify, **settings.keys)
            return self._client

    @property
    def wire(self) -> Wire | None:
        """The direct path for :data:`.wire.OPERATIONS` (plain-HTTP endpoints without a proxy), else None."""
        with self._lock:
            if not self._wire_decided:
                settings = self._settings_locked()
                self._wire_decided = True
                if wire.usable(settings.endpoint_url):
                    self._wire = Wire(str(settings.endpoint_url), region=settings.region,
                                      credentials=settings.credentials, timeout=self.timeout,
                                      user_agent=f"Botocore/{botocore.__version__} qctl/{__version__}")
            return self._wire

    def _settings_locked(self) -> _Settings:
        if self._settings is None:
            with translated(self.where, "connect", self.timeout):
                self._settings = self._resolve()
        return self._settings

    def _resolve(self) -> _Settings:
        """Region, endpoint, credentials and client config, as botocore's client and the wire both use them."""
        options, url = self.options, self.options.url
        profile = options.setting("aws_profile")
        session = botocore.session.Session(profile=str(profile)) if profile else botocore.session.Session()
        region = (url.host if self.aws else None) or options.setting("region") or session.get_config_variable("region")
        if self.aws and not region:
            raise UsageError("no AWS region: give sqs://REGION, region in the profile's [profiles.NAME.sqs] table, "
                             "or AWS_DEFAULT_REGION")
        endpoint_url = options.setting("endpoint_url") or (None if self.aws else _endpoint(options))
        keys: dict[str, Any] = {}
        config: dict[str, Any] = {
            "connect_timeout": self.timeout, "read_timeout": self.timeout,
            "retries": {"mode": "standard", "total_max_attempts": ATTEMPTS},
            "max_pool_connections": CONNECTIONS, "user_agent_extra": f"qctl/{__version__}",
            # qctl builds every request itself (names are checked first): botocore's check of each one against
            # the model costs ~0.25 ms of CPU a request, a quarter of a second over a 1,000-queue stats.
            "parameter_validation": False,
        }
        credentials: Any
        if url.username or url.password:
            keys.update(aws_access_key_id=url.username or "", aws_secret_access_key=url.password or "",
                        aws_session_token=options.setting("session_token"))
            credentials = Credentials(url.username or "", url.password or "", options.setting("session_token"))
        else:
            if not self.aws:
                # A compatible server (sqs+http(s)://) is no EC2 or ECS service: asking the instance metadata
                # service (169.254.169.254) or a container endpoint for a role only waits, and sends traffic
                # off the machine to an address the operator never named.
                resolver = session.get_component("credential_provider")
                for provider in ("iam-role", "container-role"):
                    resolver.remove(provider)
            credentials = session.get_credentials()
            if credentials is None:
                if self.aws:
                    raise BrokerUnavailable(f"no AWS credentials found for {self.where}", hint=CREDENTIAL_HINT)
                config["signature_version"] = UNSIGNED
        verify: Any = None
        if str(endpoint_url or "").startswith("https://") or (self.aws and options.tls.given):
            files = tls.checked(options.tls)
            verify = files.ca_file if files.verify and files.ca_file else (None if files.verify else False)
        return _Settings(session=session, region=str(region or SIGNING_REGION), endpoint_url=endpoint_url,
                         config=config, verify=verify, keys=keys, credentials=credentials)

    @property
    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(POOL, thread_name_prefix="qctl-sqs")
            return self._executor

    @property
    def senders(self) -> ThreadPoolExecutor:
        """The pool SendMessageBatch requests to standard queues run on, whatever their destination."""
        with self._lock:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="qctl-sqs-send")
            return self._senders

    def call(self, operation: str, what: str, **params: Any) -> Any:
        """One SQS request (``client.<operation>(**params)``, or the same through :mod:`.wire`), its errors
        translated."""
        direct = self.wire if operation in wire.OPERATIONS else None
        if direct is not None:
            with translated(self.where, what, self.timeout):
                return direct.call(wire.OPERATIONS[operation], params)
        client = self.client
        with translated(self.where, what, self.timeout):
            return getattr(client, operation)(**params)

    def fan_out(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) ...]`` on the pool, in order; the first error is raised once all have finished."""
        todo = list(items)
        if len(todo) <= SERIAL_UPTO:
            return [fn(item) for item in todo]
        futures = [self.executor.submit(fn, item) for item in todo]
        return [future.result() for future in futures]

    def url_of(self, queue: str) -> str:
        """The queue's URL (a URL is its own); QueueNotFound (exit 4) if there is no such queue."""
        if names.is_url(queue):
            return queue
        if queue not in self._urls:
            try:
                self._urls[queue] = str(self.call("get_queue_url", f"queue {queue!r}", QueueName=queue)["QueueUrl"])
            except QueueNotFound:
                raise QueueNotFound(f"queue {queue!r} not found at {self.where}",
                                    hint="list queues with 'qctl stats'") from None
        return self._urls[queue]

    def learn(self, name: str, url: str) -> None:
        """Remember a queue URL a listing gave (no GetQueueUrl for it later)."""
        self._urls.setdefault(name, url)

    def attributes(self, url: str, wanted: Iterable[str], what: str = "queue attributes") -> dict[str, str]:
        response = self.call("get_queue_attributes", f"{what} of {names.name_of(url)!r}", QueueUrl=url,
                             AttributeNames=list(wanted))
        return dict(response.get("Attributes") or {})

    def close(self) -> None:
        for executor in (self._executor, self._senders):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._senders = None
        direct, self._wire, self._wire_decided = self._wire, None, False
        if direct is not None:
            direct.close()
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing must not hide the error that ends the command
                pass


def _endpoint(options: ConnectOptions) -> str:
    """http(s)://HOST:PORT of an sqs+http(s):// URL."""
    url = options.url
    scheme = "https" if url.scheme == "sqs+https" else "http"
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{scheme}://{host}" + (f":{url.port}" if url.port else "")
