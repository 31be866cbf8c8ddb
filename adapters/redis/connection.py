"""Open the right redis-py client for a qctl URL: plain, TLS, unix socket or Cluster.

Redis Cluster is detected from the server (``INFO cluster`` says
``cluster_enabled:1``), not from the URL.  Every socket operation is bounded by
``options.timeout`` and redis-py's own retries are off, so an unreachable or
silent server fails within the timeout (exit 3) instead of after retries.
"""

from __future__ import annotations

from typing import Any

import redis
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from qctl import tls
from qctl.errors import UsageError
from qctl.options import ConnectOptions, TLSFiles

Client = redis.Redis | RedisCluster
DEFAULT_PORT = 6379
CLIENT_NAME = "qctl"  # shows up in SLOWLOG and CLIENT LIST, so operators can tell who ran a step
_TRUE = ("1", "true", "yes", "on", "required")


def connect(options: ConnectOptions) -> Client:
    """A connected client; a Cluster client when the server runs in cluster mode."""
    kwargs = client_kwargs(options)
    single = redis.Redis(**kwargs, **_address(options))
    if options.url.scheme == "unix" or not _cluster_enabled(single):
        return single
    single.close()
    nodes = [ClusterNode(host, port or DEFAULT_PORT)  # type: ignore[no-untyped-call]
             for host, port in options.url.hosts]
    return RedisCluster(startup_nodes=nodes, **kwargs)


def is_cluster(client: Client) -> bool:
    return isinstance(client, RedisCluster)


def client_kwargs(options: ConnectOptions) -> dict[str, Any]:
    """Settings shared by the single-node and the cluster client (no address, no db)."""
    url = options.url
    kwargs: dict[str, Any] = {
        "username": url.username,
        "password": url.password,
        "socket_timeout": options.timeout,
        "socket_connect_timeout": options.timeout,
        "decode_responses": False,  # bodies are bytes; redrive must keep them exactly
        "client_name": CLIENT_NAME,
        "retry": Retry(NoBackoff(), 0),
    }
    if url.scheme == "rediss":
        kwargs.update(_tls_kwargs(options))
    return kwargs


def _address(options: ConnectOptions) -> dict[str, Any]:
    url = options.url
    if url.scheme == "unix":
        return {"unix_socket_path": url.path, "db": _db(url.query.get("db", "0"))}
    return {"host": url.host or "localhost", "port": url.port or DEFAULT_PORT,
            "db": _db(url.path.strip("/") or url.query.get("db", "0"))}


def _db(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"Redis database must be a number, not {text!r}", hint="e.g. redis://localhost:6379/0")
    return int(text)


def _tls_kwargs(options: ConnectOptions) -> dict[str, Any]:
    """TLS files from the profile, else from ``?ssl_ca_certs=`` style query parameters, checked first."""
    given, query = options.tls, options.url.query
    verify = given.verify and query.get("ssl_cert_reqs", "required").lower() in _TRUE
    files = tls.checked(TLSFiles(
        ca_file=given.ca_file or query.get("ssl_ca_certs") or query.get("ca_file"),
        cert_file=given.cert_file or query.get("ssl_certfile") or query.get("cert_file"),
        key_file=given.key_file or query.get("ssl_keyfile") or query.get("key_file"),
        verify=verify))
    tls.context(files)  # a CA or certificate file that is not PEM: exit 2 naming it, before connecting
    return {
        "ssl": True,
        "ssl_ca_certs": files.ca_file,
        "ssl_certfile": files.cert_file,
        "ssl_keyfile": files.key_file,
        "ssl_cert_reqs": "required" if verify else "none",
        "ssl_check_hostname": verify,
    }


def _cluster_enabled(client: redis.Redis) -> bool:
    try:
        info = client.info("cluster")
    except rex.NoPermissionError:
        return False  # an ACL user without INFO: treat as a single server
    return bool(isinstance(info, dict) and int(info.get("cluster_enabled", 0)))
