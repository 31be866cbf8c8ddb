"""MQTT 3.1.1/5 brokers (mosquitto first), through paho-mqtt 2 (the optional extra ``qctl[mqtt]``).

What a queue is here
    A QUEUE is a topic filter (``sensors/#``, ``plant/+/temp``), checked before
    anything is sent (``#`` only as the last level, ``+`` only as a whole
    level): its messages are the *retained* messages it matches, one per
    topic, in the order the broker sends them (mosquitto: the order the topics
    were created).  The other queue-like thing, an offline persistent session
    and the messages queued for it, is dropped with ``purge --session``.

Features
    * ``stats``: with no argument (or ``$SYS`` named), one row for the broker
      from ``$SYS/broker/#``: depth = messages held for sessions (stored
      minus retained), consumers = clients connected, and extras for offline
      sessions, subscriptions, stored messages and bytes, the broker's
      retained count without its own ``$SYS`` topics, 1-minute message rates,
      uptime and version.  One row per topic filter named, with its retained
      count as depth.  ``-o prom``, ``--fail-above`` and ``--watch`` apply.
    * ``peek FILTER``: retained messages, without changing anything (one QoS 0
      subscription; the scan ends when a marker published to the private topic
      ``$qctl/scan/<client id>`` comes back, right after the last retained
      message).  ``--live`` taps live traffic instead, for ``-n`` messages or
      ``--timeout`` seconds.
    * ``purge FILTER`` clears every retained message one scan found (an empty
      retained publish each, QoS 1, after its PUBACK), with typed
      confirmation, ``--dry-run``, ``--backup`` and ``--where``; a topic that
      another client changes meanwhile is left alone (see reader.py).
      ``backup`` and ``move`` read the same way.
    * ``restore`` and ``move`` publish at QoS 1 and count a message once its
      PUBACK is in: to a topic name, or with a filter as destination, each
      message to its own topic (re-rooted from ``old/#`` to ``new/#``); the
      retain flag, user properties and MQTT 5 properties travel with it.
    * ``purge --session CLIENT_ID`` drops an offline persistent session and its
      queue, reporting ``$SYS`` store counts before and after; it refuses while
      it cannot tell that the client is offline, unless ``--force``.
    * ``redrive`` exits 2: MQTT has no dead letters.

URL format
    ``mqtt://[user:password@]host[:port]`` (port 1883) and ``mqtts://`` (TLS,
    port 8883).  Settings go in the query after a slash, or in the profile's
    ``[profiles.NAME.mqtt]`` table: ``mqtts://host/?ca_file=/etc/ca.crt``.

Options
    * ``ca_file``, ``cert_file``, ``key_file``, ``verify`` (profile, or the URL
      query): TLS for mqtts://.
    * ``protocol=5`` or ``protocol=3.1.1``: pin the MQTT version (default: 5,
      and 3.1.1 if the broker answers "unsupported protocol version").
    * ``sys_interval=SECONDS``: the broker's ``sys_interval`` (default 10),
      which bounds how long ``stats`` waits for a ``$SYS`` update.
    * ``broker_log=PATH``: mosquitto's log file (``log_dest file``), read by
      ``purge --session`` to tell whether the client is connected.
    * ``--timeout`` bounds connecting and every wait for the broker.
"""

from qctl.adapter import About

ABOUT = About(
    backend="mqtt",
    urls=(
        ("mqtt://[user:pass@]host[:port], mqtts:// (TLS)",
         "MQTT 3.1.1 and 5 brokers (mosquitto first). QUEUE is a topic filter ('sensors/#'); its messages are the "
         "retained messages it matches. stats without a QUEUE shows the broker ($SYS); purge --session CLIENT_ID "
         "drops an offline session. Settings after a slash: mqtts://host/?ca_file=PATH, ?protocol=3.1.1, "
         "?sys_interval=SECONDS, ?broker_log=PATH."),
    ),
    extra="qctl[mqtt]",
)
