"""Job-framework layouts for the Redis adapter: Celery, RQ, Sidekiq and BullMQ queues and their failed jobs.

``?layout=celery|rq|sidekiq|bullmq|auto|plain`` on a redis:// URL, or
``layout = "..."`` in the profile, picks one (``plain``, the default, is the
adapter's own view: every list, stream and sorted set is a queue).  ``auto``
detects it from a few key probes (:mod:`.detect`).  Each framework is a
module (:mod:`.sidekiq`, :mod:`.rq`, :mod:`.bullmq`, :mod:`.celery`) built on
the shared readers (:mod:`.sources`) and the one guarded Lua step
(:mod:`.steps`); the keys and retry semantics they follow, with their
sources, are in docs/internals/job-frameworks.md.
"""

from __future__ import annotations

from qctl.adapters.redis.connection import Client, is_cluster
from qctl.adapters.redis.layouts.base import Layout
from qctl.errors import Unsupported, UsageError
from qctl.options import ConnectOptions

NAMES = ("celery", "rq", "sidekiq", "bullmq")
CHOICES = (*NAMES, "auto", "plain")


def chosen(options: ConnectOptions) -> str:
    """The layout the URL or profile names (``plain`` when none); an unknown one is exit 2."""
    name = str(options.setting("layout") or "plain").strip().lower()
    if name not in CHOICES:
        raise UsageError(f"unknown Redis layout {name!r}", hint="choose one of " + ", ".join(CHOICES))
    return name


def select(client: Client, options: ConnectOptions, where: str, notices: list[str], name: str,
           queues: tuple[str, ...] = ()) -> Layout | None:
    """The layout object for ``name`` (None for ``plain``); ``auto`` probes the server first."""
    if name == "plain":
        return None
    if is_cluster(client):
        raise Unsupported("job-framework layouts need a single Redis server, not a Cluster",
                          hint="Sidekiq, RQ and kombu do not run on Redis Cluster; use the plain layout there")
    if name == "auto":
        from qctl.adapters.redis.layouts.detect import detect

        name = detect(client, options, queues)
    return _class(name)(client, options, where, notices)


def _class(name: str) -> type[Layout]:
    if name == "sidekiq":
        from qctl.adapters.redis.layouts.sidekiq import Sidekiq

        return Sidekiq
    if name == "rq":
        from qctl.adapters.redis.layouts.rq import RQ

        return RQ
    if name == "bullmq":
        from qctl.adapters.redis.layouts.bullmq import BullMQ

        return BullMQ
    from qctl.adapters.redis.layouts.celery import Celery

    return Celery
