"""``?layout=auto``: which job framework uses this database, from a few key probes (never a full scan).

One pipeline asks for each framework's registry key (RQ ``rq:queues``,
Sidekiq ``queues``, kombu's ``_kombu.binding.celery`` and ``unacked_index``)
and, for queues named on the command line, for their keys in every layout.
BullMQ keeps no registry, so only when nothing else answered does it look at
a bounded number of ``SCAN ... MATCH bull:*:meta`` pages.  Two frameworks in
one database, or none, is a usage error that says how to name one.
"""

from __future__ import annotations

from collections.abc import Sequence

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import key_bytes, key_name, pipelined
from qctl.errors import UsageError
from qctl.options import ConnectOptions

SCAN_PAGES = 4  # SCAN calls (COUNT 1000 each) BullMQ detection may spend
SEP = b"\x06\x16"


def detect(client: Client, options: ConnectOptions, queues: Sequence[str] = ()) -> str:
    rq = str(options.setting("prefix") or "rq").encode()
    bull = str(options.setting("prefix") or "bull").encode()
    kombu = str(options.setting("prefix") or "").encode()
    probes: list[tuple[str, tuple[bytes, ...], str]] = [
        ("rq", (b"TYPE", rq + b":queues"), "set"),
        ("sidekiq", (b"TYPE", b"queues"), "set"),
        ("celery", (b"TYPE", kombu + b"_kombu.binding.celery"), "set"),
        ("celery", (b"TYPE", kombu + b"unacked_index"), "zset"),
    ]
    for queue in queues:
        name = key_bytes(queue.split(":", 1)[0] if ":" in queue else queue)
        probes += [("rq", (b"TYPE", rq + b":queue:" + name), "list"),
                   ("rq", (b"TYPE", rq + b":failed:" + name), "zset"),
                   ("sidekiq", (b"TYPE", b"queue:" + name), "list"),
                   ("bullmq", (b"TYPE", bull + b":" + name + b":meta"), "hash"),
                   ("celery", (b"TYPE", kombu + b"_kombu.binding." + name), "set")]
    replies = pipelined(client, [probe for _, probe, _ in probes])
    found = sorted({framework for (framework, _, wanted), kind in zip(probes, replies, strict=True)
                    if key_name(kind) == wanted})
    if not found and _bullmq(client, bull):
        found = ["bullmq"]
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"this database holds keys of {' and '.join(found)}: ?layout=auto cannot choose",
                         hint="name the layout: ?layout=" + "|".join(found))
    raise UsageError("?layout=auto found no job framework's keys here (rq:queues, queues, _kombu.binding.*, "
                     "bull:*:meta)", hint="name the layout (?layout=celery|rq|sidekiq|bullmq), or use the plain one")


def _bullmq(client: Client, prefix: bytes) -> bool:
    cursor: int | bytes = 0
    for _ in range(SCAN_PAGES):
        cursor, keys = client.scan(cursor=int(cursor), match=prefix + b":*:meta", count=1000)
        if keys:
            return True
        if int(cursor) == 0:
            return False
    return False
