"""RabbitMQ (>= 3.10) over AMQP 0-9-1 (pika) and the management HTTP API.

Features
--------
* ``stats``: every queue of the vhost in one cheap management-API request
  (``disable_stats`` with queue totals: measured cheaper for the broker than
  paging on 3.10, see stats.py), consumers from ``/api/consumers``, the
  effective policy from the vhost's policies and operator policies; exact
  ready counts and consumers by passive declare for queues named outright and
  short selections; type classic / quorum / stream; the dead-letter queue
  found by following the queue's dead-letter exchange and routing key
  (argument or policy) through the exchange's bindings, else by naming
  convention.  Without the management API, named queues still work over AMQP
  (``type`` is ``unknown``).
* ``peek``: streams by offset (no side effects); classic and quorum queues by
  taking up to N messages and closing the channel to return them in place
  (order kept, marked redelivered).  Refused on quorum queues with a delivery
  limit (argument, policy or operator policy), and on quorum queues whenever
  the limit cannot be read (no management API: the type is then learnt over
  AMQP before anything is taken).
* ``purge``: ``queue.purge``; ``--backup`` consumes, writes, fsyncs, then acks.
* ``redrive``: publisher confirms with a window; each DLQ message acked only
  after its republish is confirmed; bounded by the depth at start; straight
  to the queue through the default exchange, or ``--via-exchange``.
* ``publish`` (``restore``): properties and headers restored from peek JSON.

URL format
----------
``amqp://USER:PASSWORD@HOST[:PORT][/VHOST][?management=URL]`` and ``amqps://``
(TLS).  The vhost is URL-encoded (``%2F`` is ``/``; an empty path is ``/``).
Ports default to 5672 / 5671; user and password to ``guest``.

Options
-------
* ``management_url`` (``--management-url``, profile, ``?management=``): the
  management API, default ``http://HOST:15672``; same credentials as AMQP.
* ``ca_file``, ``cert_file``, ``key_file``, ``verify``: TLS for amqps:// and
  an https:// management URL.
* ``timeout`` (``--timeout``): the connect and every request.
* ``dead_letter`` naming rules: fallback DLQ names and redrive targets.
"""

from __future__ import annotations

from qctl.adapters.rabbitmq.adapter import RabbitMQAdapter

__all__ = ["RabbitMQAdapter"]
