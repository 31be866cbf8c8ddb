"""Redis adapter: lists, streams and sorted sets as queues, on a server or a Cluster.

Features
    * ``stats``: every list, stream and sorted set (SCAN + pipelined TYPE and
      depth, never KEYS), or names and shell globs; streams report pending
      entries, group lag and consumers; dead-letter queues found by name
      (``<q>:dlq``, ``<q>.dlq``, ``<q>-dlq``, ``<q>:dead``, ``dlq:<q>``...).
    * ``peek``: LRANGE from the end consumers pop first, XRANGE (never
      XREADGROUP) from ``--from ID`` or ``--since TIME``, ZRANGE WITHSCORES.
    * ``purge`` and ``redrive`` in atomic Lua steps of at most
      :data:`~qctl.adapters.redis.scripts.CHUNK` items; ``purge --backup``
      deletes only what it wrote; redrive list/sorted set -> list and
      stream -> stream, with ``x-qctl-redrive-count`` on stream entries.
    * ``restore`` (publish) to lists, streams and sorted sets.
    * Redis Cluster, detected from ``INFO cluster``: SCAN on every primary;
      redrive across slots through a journal (:mod:`.crossslot`).
    * Binary-safe: keys and bodies are bytes end to end.

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

from qctl.adapters.redis.adapter import RedisAdapter

__all__ = ["RedisAdapter"]
