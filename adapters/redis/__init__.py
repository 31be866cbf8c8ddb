"""Redis adapter: lists, streams and sorted sets as queues, on a server or a Cluster.

Features
    * ``stats``: every list, stream and sorted set (SCAN + pipelined TYPE and
      depth, never KEYS), or names and shell globs; streams report pending
      entries, group lag, consumers and the oldest entry's age; dead-letter
      queues found by name (``<q>:dlq``, ``<q>.dlq``, ``<q>-dlq``, ``<q>:dead``,
      ``dlq:<q>``...).
    * ``peek``: LRANGE from the end consumers pop first, XRANGE (never
      XREADGROUP) from ``--from ID`` or ``--since TIME``, ZRANGE WITHSCORES.
    * The engine's primitives: a :class:`~.reader.RedisReader` reads chunks
      without touching them and settles exactly the chosen ones in one
      verified Lua step; a :class:`~.destination.RedisDestination` pushes, and
      moves from a pass on the same server in that same step (a blind step
      for list and sorted-set redrives that no message can redirect).  At most
      :data:`~.scripts.CHUNK` items a step.
    * ``purge`` without a backup: bounded LTRIM / XDEL / ZREMRANGEBYRANK steps.
    * Redis Cluster, detected from ``INFO cluster``: SCAN on every primary;
      moves across slots through a journal (:mod:`.crossslot`).
    * Binary-safe: keys and bodies are bytes end to end; stream fields keep
      their order, sorted-set members their score.

URL format
    ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS),
    ``unix:///path/to/socket?db=N``.  The default port is 6379, the default db 0.

Options
    * ``list_end`` (profile key or ``?list_end=``): ``right`` (default; LPUSH +
      BRPOP, Celery, Sidekiq) or ``left`` (RPUSH + BLPOP, RQ): the end
      consumers pop first, used by peek, purge, redrive and restore.
    * TLS: the profile's ``ca_file``, ``cert_file``, ``key_file``, ``verify``,
      or for ad-hoc use ``?ssl_ca_certs=``, ``?ssl_certfile=``, ``?ssl_keyfile=``,
      ``?ssl_cert_reqs=none``.
    * ``--timeout`` bounds connecting and every command; redis-py retries are off.
    * ``dead_letter`` suffixes/prefixes from the profile extend the naming rules.
"""

from qctl.adapter import About

ABOUT = About(
    backend="redis",
    urls=(
        ("redis://[user:pass@]host[:port][/db], rediss:// (TLS), unix:///path?db=N",
         "Redis 6 or later. A list, stream or sorted set is a queue. Redis Cluster is detected from the server. "
         "?list_end=left for queues consumed from the left (RPUSH + BLPOP, as RQ does)."),
    ),
)
