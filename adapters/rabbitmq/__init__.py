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
  (order kept, marked redelivered).  A quorum queue with a delivery limit
  (argument, policy or operator policy), or whose limit cannot be read, is
  reported as counting reads, and the core's guard refuses the peek.
* ``purge``: ``queue.purge``.
* The engine's primitives: a :class:`~.reader.RabbitMQReader` takes exactly
  what it is asked for and acks what is settled (returning the rest in place
  when it closes); a :class:`~.destination.RabbitMQDestination` publishes with
  confirms in a window, straight to the queue (or ``--via-exchange``).

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

from qctl.adapter import About

ABOUT = About(
    backend="rabbitmq",
    urls=(
        ("amqp://user:pass@host[:port][/vhost], amqps:// (TLS)",
         "RabbitMQ 3.10 or later. The vhost is URL-encoded (%2F is /). The management API is http://host:15672 "
         "unless ?management=URL, the profile's management_url or --management-url say otherwise (it may carry "
         "its own user:pass@)."),
    ),
)
