"""A small client for the RabbitMQ management HTTP API (standard library only).

What a ``stats`` listing asks for (see :mod:`qctl.adapters.rabbitmq.stats` for
the measurements behind it): one ``/api/queues/<vhost>`` request with
``disable_stats=true&enable_queue_totals=true`` and only the columns used, plus
``/api/consumers/<vhost>`` (consumer counts), ``/api/policies/<vhost>`` and
``/api/operator-policies/<vhost>`` (the effective policy) and ``/api/whoami``,
the small ones asked beside the big one (on the one connection, in turn).  The paged listing with the
statistics database's columns (:meth:`Management.queues_paged`) remains for
users whose tags do not show every consumer.  The standard library is enough
for a handful of GETs with basic auth; a client library would not earn its place.

Connections: every request goes over one keep-alive HTTP/1.1 connection
(:class:`KeepAlive`), opened on the first request and kept for the life of the
client, so ``stats --watch`` holds one management connection beside its AMQP
one.  Before, each request had a connection of its own: a watch of one queue
(~21 requests a frame: the queue, two policy listings, 18 dead-letter
candidates four at a time) held up to four at once and opened one per
request, ~1,000 a minute (bench/soak.py).  Requests asked from several threads
now take turns on the one connection.  RabbitMQ's web server (Cowboy) ends a
keep-alive connection after 1,000 requests, with ``Connection: close``: the
next request opens a new one, so a long watch opens one every ~50 frames,
never two at once.

Measured on loopback, one queue's ``stats`` (those ~21 requests), median of 40
calls on a loaded 2-CPU machine: over http about the same in turn on the kept
connection as four at a time on new connections (13-30 ms against 13-25 ms in
six runs; a request on the kept connection takes ~0.8 ms), over https 17-37 ms
against 170-240 ms in four (no TLS handshake per request).  One cost: the
paged statistics listing (users without the monitoring tags) gets its pages
in turn too, where it had two at a time: by stats.py's table, ~1.8 s instead
of ~1.6 s for 5,000 queues on 3.10.

Through an HTTP proxy (``http_proxy``/``https_proxy``, unless ``no_proxy``
names the host) and after a redirect, a request goes through urllib as before,
on a connection of its own.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from qctl import tls
from qctl.adapters.rabbitmq.connection import tls_context, vhost_of
from qctl.adapters.rabbitmq.errors import ManagementUnavailable
from qctl.adapters.rabbitmq.policies import PolicyBook
from qctl.errors import QueueNotFound, UsageError
from qctl.options import ConnectOptions
from qctl.urls import redact, register_secret

PAGE_SIZE = 500
PARALLEL_PAGES = 2
# What only the statistics database knows, not the disable_stats listing: the head message's AMQP
# timestamp (oldest_age) and the cumulative message counters (the rates of --watch).  See stats.py.
FLOW_COLUMNS = ("head_message_timestamp", "message_stats.publish", "message_stats.deliver_get",
                "message_stats.redeliver")
QUEUE_COLUMNS = ("name", "type", "messages_ready", "messages_unacknowledged", "consumers", "arguments",
                 "effective_policy_definition", "policy", "node", "leader", "members", *FLOW_COLUMNS)
# disable_stats + enable_queue_totals: counts straight from the queues, no statistics database.
LISTING_COLUMNS = ("name", "type", "arguments", "policy", "messages_ready", "messages_unacknowledged",
                   "node", "leader", "members")  # where it lives: stats' leader and members
# Users with these tags see every consumer in /api/consumers; others only their own connections'.
MONITOR_TAGS = frozenset({"administrator", "monitoring"})
FLOW_REGEX_BUDGET = 6000  # characters of URL-encoded name regex per request (Cowboy refuses request lines > 8000)
HINT = "pass --management-url http://HOST:15672 (or the profile's management_url), or enable rabbitmq_management"


def base_url(options: ConnectOptions) -> tuple[str, str | None, str | None]:
    """(management API base URL without userinfo, its own user, its own password).

    ``--management-url http://user:pass@host:15672`` carries credentials of its own (masked everywhere,
    like any password); otherwise the API is asked with the AMQP URL's."""
    if not options.management_url:
        return f"http://{options.url.host}:15672", None, None
    parts = urlsplit(options.management_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"management URL {redact(options.management_url)!r} is not http(s)://HOST[:PORT]",
                         hint="e.g. --management-url http://rabbit:15672")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password:
        register_secret(password)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/"), user, password


class KeepAlive:
    """One keep-alive HTTP/1.1 connection to ``base``, reused by every request; threads take turns on it.

    A connection the server closed while idle (RabbitMQ's web server ends keep-alive connections after
    a while, or after a number of requests) is found when a request on it fails to get an answer: such
    a GET is sent once more on a new connection.  A request that fails otherwise closes the connection,
    and the next request opens a new one."""

    def __init__(self, base: str, timeout: float, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path
        self.opened = 0  # TCP connections made so far (tests count them)
        self._lock = threading.Lock()
        if parts.scheme == "https":
            self._connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout, context=context)
        else:
            self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)

    def get(self, target: str, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """(status, reason, body) of ``GET prefix + target``."""
        with self._lock:
            reused = self._connection.sock is not None
            try:
                return self._once(target, headers)
            except ConnectionError:  # reset, broken pipe, or closed without an answer (RemoteDisconnected)
                if not reused:
                    raise
            return self._once(target, headers)  # the server had closed the idle connection: once more, anew

    def _once(self, target: str, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        connection = self._connection
        try:
            if connection.sock is None:
                connection.connect()
                self.opened += 1
            connection.request("GET", self.prefix + target, headers=dict(headers))
            response = connection.getresponse()
            body = response.read()  # read to the end: the connection is free for the next request
        except BaseException:
            connection.close()  # whatever state it was left in, the next request starts on a new one
            raise
        # An answer with "Connection: close" closed it already (http.client): the next request reconnects.
        return response.status, response.reason, body

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class Management:
    def __init__(self, options: ConnectOptions) -> None:
        self.base, own_user, own_password = base_url(options)
        self.vhost = quote(vhost_of(options), safe="")
        self.timeout = options.timeout
        user = own_user or options.url.username or "guest"
        password = own_password if own_user is not None else (options.url.password or "guest")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        self._context: ssl.SSLContext | None = tls_context(options) if self.base.startswith("https:") else None
        self._tls = options.tls
        self._tags: frozenset[str] | None = None
        self.connection = KeepAlive(self.base, self.timeout, self._context)
        host = urlsplit(self.base).hostname or ""
        scheme = urlsplit(self.base).scheme
        self._proxied = scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and decode its JSON; None when the API answers 404."""
        target = path + ("?" + urlencode(params) if params else "")
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        shown = redact(self.base)
        try:
            if self._proxied:
                status, reason, body = self._through_urllib(target, headers)
            else:
                status, reason, body = self.connection.get(target, headers)
                if 300 <= status < 400:  # urllib follows redirects; the keep-alive connection does not
                    status, reason, body = self._through_urllib(target, headers)
            if status == 404:
                return None
            if status == 401:
                raise ManagementUnavailable(f"the management API at {shown} refused the credentials (401)",
                                            hint="check the user and password (of the URL, or of the management "
                                                 "URL's own user:pass@)")
            if status == 403:
                raise ManagementUnavailable(f"the management API at {shown} refused this user (403)",
                                            hint="the user needs the 'management' (or 'monitoring') tag")
            if not 200 <= status < 300:
                raise ManagementUnavailable(f"the management API at {shown} answered {status} {reason}")
            return json.loads(body)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = redact(str(getattr(exc, "reason", exc)))
            raise ManagementUnavailable(f"the management API at {shown} is unreachable: {reason}",
                                        hint=tls.explain(reason, self._tls) or HINT) from None

    def _through_urllib(self, target: str, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """A request on a connection of its own, through urllib: proxies, redirects."""
        request = urllib.request.Request(self.base + target, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return response.status, response.reason, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, str(exc.reason), b""

    def close(self) -> None:
        self.connection.close()

    def queue_names(self) -> list[str]:
        """Just the names of the vhost's queues (shell completion), the cheapest listing there is."""
        rows = self.get(f"/api/queues/{self.vhost}", {"disable_stats": "true", "columns": "name"})
        return [str(row["name"]) for row in rows or [] if isinstance(row, dict) and "name" in row]

    def queue_listing(self) -> list[dict[str, Any]]:
        """Every queue of the vhost in one request: name, type, arguments, policy name, ready, unacked.

        With ``disable_stats=true&enable_queue_totals=true`` RabbitMQ 3.10 asks each queue for its
        totals (as ``rabbitmqctl list_queues`` does) instead of joining the statistics database.  It
        does so for the whole vhost before it pages, so this listing is not paged: see stats.py.
        """
        rows = self.get(f"/api/queues/{self.vhost}", {
            "disable_stats": "true", "enable_queue_totals": "true", "columns": ",".join(LISTING_COLUMNS)})
        if rows is None:
            raise QueueNotFound(f"vhost {unquote(self.vhost)!r} not found")
        return rows if isinstance(rows, list) else []

    def consumer_counts(self) -> dict[str, int] | None:
        """Consumers per queue, or None when the API cannot show them all.

        ``/api/consumers`` lists only the caller's own consumers unless the user is tagged
        ``administrator`` or ``monitoring``, and answers 400 when statistics are disabled on the node.
        """
        if not MONITOR_TAGS & self.tags():
            return None
        try:
            rows = self.get(f"/api/consumers/{self.vhost}", {"columns": "queue.name"})
        except ManagementUnavailable:
            return None
        counts: dict[str, int] = {}
        for row in rows if isinstance(rows, list) else []:
            queue = row.get("queue") if isinstance(row, dict) else None
            if isinstance(queue, dict) and "name" in queue:
                counts[str(queue["name"])] = counts.get(str(queue["name"]), 0) + 1
        return counts

    def tags(self) -> frozenset[str]:
        if self._tags is None:
            row = self.get("/api/whoami")
            tags = row.get("tags", []) if isinstance(row, dict) else []
            if isinstance(tags, str):  # "administrator,monitoring" before 3.9
                tags = tags.split(",")
            self._tags = frozenset(str(tag).strip() for tag in tags)
        return self._tags

    def policy_book(self) -> PolicyBook:
        """The vhost's policies and operator policies now (tiny requests: no statistics involved)."""
        policies = self.get(f"/api/policies/{self.vhost}")
        try:
            operator = self.get(f"/api/operator-policies/{self.vhost}")
        except ManagementUnavailable:
            operator = []  # refused to some users: operator policies only cap limits, never set a DLX,
            # and peek also heeds the queue's own effective policy (which includes them)
        return PolicyBook(policies if isinstance(policies, list) else [],
                          operator if isinstance(operator, list) else [])

    def exchanges(self) -> dict[str, str]:
        """Every exchange's type, in one request."""
        rows = self.get(f"/api/exchanges/{self.vhost}", {"disable_stats": "true", "columns": "name,type"})
        return {str(row["name"]): str(row.get("type")) for row in rows or [] if isinstance(row, dict) and "name" in row}

    def bindings(self) -> list[dict[str, Any]]:
        """Every binding of the vhost, in one request."""
        rows = self.get(f"/api/bindings/{self.vhost}")
        return rows if isinstance(rows, list) else []

    def queues_paged(self) -> list[dict[str, Any]]:
        """Every queue of the vhost with the statistics database's columns, in pages of 500."""
        first = self._page(1)
        if first is None:
            raise QueueNotFound(f"vhost {unquote(self.vhost)!r} not found")
        rows: list[dict[str, Any]] = list(first.get("items", []))
        pages = int(first.get("page_count", 1))
        if pages > 1:
            with ThreadPoolExecutor(max_workers=PARALLEL_PAGES) as pool:
                for page in pool.map(self._page, range(2, pages + 1)):
                    rows.extend((page or {}).get("items", []))
        return rows

    def _page(self, number: int) -> Any:
        return self.get(f"/api/queues/{self.vhost}", {
            "page": number, "page_size": PAGE_SIZE, "columns": ",".join(QUEUE_COLUMNS)})

    def queue_flows(self, names: Sequence[str] | None) -> dict[str, dict[str, Any]]:
        """The statistics database's :data:`FLOW_COLUMNS` of the named queues (of every queue: None), by name.

        One paged request whose ``name`` filter is a regex of the exact names (more requests only when the
        regex would not fit in a URL): the API filters and pages on the queue's basic columns, then joins
        only the matched rows against the statistics database (``rabbit_mgmt_util:augment_resources``),
        so the cost grows with the names asked, not with the vhost.  The filter is case-insensitive in
        RabbitMQ; rows are matched to the names exactly here.
        """
        params: dict[str, Any] = {"page": 1, "page_size": PAGE_SIZE, "columns": "name," + ",".join(FLOW_COLUMNS)}
        if names is None:
            chunks: list[dict[str, Any]] = [params]
        else:
            chunks = [{**params, "name": regex, "use_regex": "true"} for regex in _name_regexes(names)]
        found: dict[str, dict[str, Any]] = {}
        for query in chunks:
            page = self.get(f"/api/queues/{self.vhost}", query)
            for row in (page or {}).get("items", []) if isinstance(page, dict) else []:
                if isinstance(row, dict) and "name" in row:
                    found[str(row["name"])] = row
        return found if names is None else {name: found[name] for name in names if name in found}

    def queue(self, name: str) -> dict[str, Any] | None:
        row = self.get(f"/api/queues/{self.vhost}/{quote(name, safe='')}", {"columns": ",".join(QUEUE_COLUMNS)})
        return row if isinstance(row, dict) else None

    def exchange_type(self, exchange: str) -> str | None:
        row = self.get(f"/api/exchanges/{self.vhost}/{quote(exchange, safe='')}", {"columns": "type"})
        return row.get("type") if isinstance(row, dict) else None

    def bindings_from(self, exchange: str) -> list[dict[str, Any]]:
        rows = self.get(f"/api/exchanges/{self.vhost}/{quote(exchange, safe='')}/bindings/source")
        return rows if isinstance(rows, list) else []


def _name_regexes(names: Sequence[str]) -> list[str]:
    """Anchored alternations of the escaped names, each within :data:`FLOW_REGEX_BUDGET` once URL-encoded.

    Python's ``re.escape`` escapes only punctuation with a backslash, which PCRE (Erlang's ``re``)
    reads as the literal character too."""
    regexes: list[str] = []
    current: list[str] = []
    size = 0
    for name in dict.fromkeys(names):
        escaped = re.escape(name)
        cost = len(quote(escaped, safe="")) + 3
        if current and size + cost > FLOW_REGEX_BUDGET:
            regexes.append(r"\A(?:" + "|".join(current) + r")\z")
            current, size = [], 0
        current.append(escaped)
        size += cost
    if current:
        regexes.append(r"\A(?:" + "|".join(current) + r")\z")
    return regexes
