"""A small client for the RabbitMQ management HTTP API (standard library only).

Listing pages through ``/api/queues/<vhost>`` asking only for the needed
columns; after the first page the rest are fetched a few at a time in
parallel, so 5,000 queues cost ten requests and about the time of three.
urllib is enough for a handful of GETs with basic auth; a client library would
not earn its place.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote, urlencode

from qctl.adapter import ConnectOptions
from qctl.adapters.rabbitmq.connection import tls_context, vhost_of
from qctl.adapters.rabbitmq.errors import ManagementUnavailable
from qctl.errors import QueueNotFound
from qctl.urls import redact

PAGE_SIZE = 500
PARALLEL_PAGES = 4
QUEUE_COLUMNS = ("name", "type", "messages_ready", "messages_unacknowledged", "consumers", "arguments",
                 "effective_policy_definition", "policy")
HINT = "pass --management-url http://HOST:15672 (or the profile's management_url), or enable rabbitmq_management"


def base_url(options: ConnectOptions) -> str:
    if options.management_url:
        return options.management_url.rstrip("/")
    return f"http://{options.url.host}:15672"


class Management:
    def __init__(self, options: ConnectOptions) -> None:
        self.base = base_url(options)
        self.vhost = quote(vhost_of(options), safe="")
        self.timeout = options.timeout
        user, password = options.url.username or "guest", options.url.password or "guest"
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._context: ssl.SSLContext | None = tls_context(options) if self.base.startswith("https:") else None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and decode its JSON; None when the API answers 404."""
        url = self.base + path + ("?" + urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Authorization": self._auth, "Accept": "application/json"})
        shown = redact(self.base)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code in (401, 403):
                raise ManagementUnavailable(f"the management API at {shown} refused the credentials ({exc.code})",
                                            hint="the user needs the 'management' (or 'monitoring') tag") from None
            raise ManagementUnavailable(f"the management API at {shown} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ManagementUnavailable(f"the management API at {shown} is unreachable: {redact(str(reason))}",
                                        hint=HINT) from None

    def queues(self) -> list[dict[str, Any]]:
        """Every queue of the vhost (only the needed columns), in pages of 500."""
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

    def queue(self, name: str) -> dict[str, Any] | None:
        row = self.get(f"/api/queues/{self.vhost}/{quote(name, safe='')}", {"columns": ",".join(QUEUE_COLUMNS)})
        return row if isinstance(row, dict) else None

    def exchange_type(self, exchange: str) -> str | None:
        row = self.get(f"/api/exchanges/{self.vhost}/{quote(exchange, safe='')}", {"columns": "type"})
        return row.get("type") if isinstance(row, dict) else None

    def bindings_from(self, exchange: str) -> list[dict[str, Any]]:
        rows = self.get(f"/api/exchanges/{self.vhost}/{quote(exchange, safe='')}/bindings/source")
        return rows if isinstance(rows, list) else []
