"""Publishing into MQTT (restore, move): QoS 1, and a message counts as delivered only on its PUBACK.

Where each message goes:

* a topic name (``--to sensors/t1``): every message to that topic;
* a topic filter (``--to 'sensors/#'``): each message to its own topic (its
  ``position``, as a retained scan or ``peek`` wrote it) when that matches the
  filter: restoring a backup of a retained tree puts every message back where
  it was;
* ...or, when both are whole subtrees, to the same place under the new root:
  a message read under ``old/#`` from ``old/a/b`` goes to ``new/a/b`` for
  ``--to 'new/#'`` (``move 'old/#' 'new/#'`` moves a retained tree);
* anything else (a Redis message's position "3", a filter with ``+``) is
  refused with the reason: restore or move it to a topic name instead.

The retain flag comes from the message (``properties.retain``): a backup of
retained messages restores retained, a message from another broker is a live
publish.  A live publish that no subscription or session matches is dropped
by the broker; MQTT 5 says so in the PUBACK ("no matching subscribers"), and
qctl then counts it as not delivered, so ``move`` leaves it in its source.
(MQTT 3.1.1 PUBACKs say nothing: there, a PUBACK is a delivery.)  Every
publish is QoS 1, whatever QoS the message had, so the broker confirms it; a
retained message therefore comes back stored at QoS 1.

A topic holds one retained message, so publishing a retained message where
another one already is would replace it, silently, losing it.  qctl refuses
that message instead (the same payload again loses nothing, and passes):
:meth:`MQTTDestination.refusal`, after one scan of the destination when the
first retained message is checked.  Restore is then exit 2 naming the line;
move leaves the message in its source.  Purge the old ones first to restore
over them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from qctl.adapters.mqtt import messages, topics
from qctl.adapters.mqtt.connection import Connection, Sent
from qctl.adapters.mqtt.notices import Notices
from qctl.errors import Unsupported, UsageError
from qctl.models import Message
from qctl.primitives import Carries, Reader, Taken

NO_MATCHING_SUBSCRIBERS = 0x10
_CARRIES_FIELDS = frozenset(field.name for field in dataclasses.fields(Carries))
# Whether the core counts dropped properties by name (Carries.property_names) or leaves it to us.
CORE_COUNTS_PROPERTIES = "property_names" in _CARRIES_FIELDS


def carries(**wanted: Any) -> Carries:
    """A Carries with the fields this version of the core knows (it grows: header repeats, property names)."""
    return Carries(**{name: value for name, value in wanted.items() if name in _CARRIES_FIELDS})


class MQTTDestination:
    def __init__(self, conn: Connection, queue: str, notices: Notices, *,
                 held: Callable[[], dict[str, bytes]] | None = None) -> None:
        self.conn = conn
        self.queue = queue
        self.notices = notices
        self._held = held  # topic -> retained payload under queue, asked once when first needed
        self._held_payloads: dict[str, bytes] | None = None
        self.each_to_own_topic = topics.is_filter(queue)
        if not self.each_to_own_topic:
            problem = topics.name_problem(queue)
            if problem:
                raise UsageError(f"cannot publish to {queue!r}: {problem}",
                                 hint="give a topic name, or a filter ('sensors/#') to restore each message to its "
                                      "own topic")
        if conn.limits.maximum_qos < 1:
            raise Unsupported(f"{conn.where} accepts only QoS 0, so no publish could be confirmed",
                              hint="qctl publishes at QoS 1 and waits for each PUBACK")
        self.dropped: Counter[str] = Counter()

    @property
    def carries(self) -> Carries:
        v5 = self.conn.v5
        return carries(headers=v5, header_repeats=v5, properties=v5,
                       property_names=messages.CARRIED if v5 else frozenset({"retain"}))

    def topic(self, message: Message) -> str | None:
        if not self.each_to_own_topic:
            return self.queue
        topic = message.position
        if topics.name_problem(topic) is not None:
            return None
        if topics.matches(self.queue, topic):
            return topic
        return topics.rerooted(message.queue, self.queue, topic)

    def refusal(self, message: Message) -> str | None:
        topic = self.topic(message)
        if topic is None:
            shown = f"topic {message.position!r}" if message.position else "no topic (position)"
            return (f"it has {shown}, not one under {self.queue!r} (restore or move to a topic name to publish "
                    f"every message there)")
        limits = self.conn.limits
        problem = messages.refusal(message, v5=self.conn.v5, maximum_packet_size=limits.maximum_packet_size,
                                   retain_available=limits.retain_available, topic=topic)
        held = self.held_payloads().get(topic) if problem is None and messages.retain_of(message) else None
        if held is not None and held != message.body:
            return (f"{topic!r} already holds a retained message, which this one would replace (purge it first "
                    f"to put this one there)")
        return problem

    def held_payloads(self) -> dict[str, bytes]:
        if self._held_payloads is None:
            self._held_payloads = self._held() if self._held is not None else {}
        return self._held_payloads

    def send(self, outgoing: Sequence[Message]) -> list[Sent]:
        sent = []
        for message in outgoing:
            topic = self.topic(message)
            assert topic is not None  # refusal() said so first
            properties = None
            if self.conn.v5:
                properties, dropped = messages.publish_properties(message)
                if dropped and not CORE_COUNTS_PROPERTIES:
                    for name in dropped:
                        self.dropped[name] += 1
                    names = ", ".join(sorted(self.dropped))
                    self.notices.count("dropped-properties", f"message(s) had properties MQTT has no place for, "
                                       f"dropped: {names}")
            sent.append(self.conn.publish(topic, message.body, qos=1, retain=messages.retain_of(message),
                                          properties=properties))
        return sent

    def confirmed(self, ticket: Any, *, wait: bool) -> list[bool] | None:
        sent: list[Sent] = ticket
        if wait:
            self.conn.wait_sent(sent)
        else:
            self.conn.poll()
            if any(item.reason is None for item in sent):
                return None
        results = []
        for item in sent:
            assert item.reason is not None
            unheard = item.reason == NO_MATCHING_SUBSCRIBERS and not item.retain
            if unheard:
                self.notices.count("unheard", f"message(s) matched no subscription or session on {self.queue!r}: "
                                   f"the broker would have dropped them, so they count as not delivered")
            results.append(item.reason < 0x80 and not unheard)
        return results

    def move_from(self, reader: Reader, taken: Sequence[Taken], outgoing: Sequence[Message]) -> None:
        return None  # MQTT has no atomic move: the engine publishes, then settles
