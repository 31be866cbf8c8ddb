"""What of a message reaches another queue, and the notice for what does not (docs/mapping.md).

A destination says what it keeps (:class:`qctl.primitives.Carries`); a move,
redrive or restore counts, per message it delivered, each part of the message
*as its source had it* that the destination could not keep.  The counts are
per part, so the operator reads one line per kind of loss ("3 message(s)
carried a key that ... cannot keep"), with the property names that went.
Broker-set parts (Kafka partition and offset, AMQP redelivered, a stream entry
ID) are not the message's and are never counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from qctl.models import Message
from qctl.primitives import Carries

KEY = "key"
HEADERS = "headers"
REPEATS = "repeated headers"
PROPERTIES = "properties"
TIMESTAMP = "timestamp"
PARTS = (KEY, HEADERS, REPEATS, PROPERTIES, TIMESTAMP)
SEE = "see qctl(1), MAPPING"
# A property that is the message's own time (AMQP ``timestamp``): told once, as the timestamp.
TIME_PROPERTY = "timestamp"


def keeps_everything(carries: Carries) -> bool:
    """A backup file, or a purge's discard: nothing to count (a backup writes a million messages)."""
    return (carries.key and carries.headers and carries.header_repeats and carries.properties
            and carries.property_names is None and carries.timestamp)


@dataclass(slots=True)
class Dropped:
    """Messages that lost each part, and the names of the properties lost."""

    parts: Counter[str] = field(default_factory=Counter)
    properties: Counter[str] = field(default_factory=Counter)

    def count(self, carries: Carries, message: Message) -> None:
        """Count what of ``message`` (as its source had it) a destination with ``carries`` did not keep."""
        if message.key is not None and not carries.key:
            self.parts[KEY] += 1
        pairs = message.pairs()
        if pairs and not carries.headers:
            self.parts[HEADERS] += 1
        elif pairs and not carries.header_repeats and len({name for name, _ in pairs}) < len(pairs):
            self.parts[REPEATS] += 1
        stamp_lost = message.timestamp is not None and not carries.timestamp
        lost = [name for name, value in message.properties.items()
                if value is not None and not carries.keeps_property(name)
                and not (stamp_lost and name == TIME_PROPERTY)]
        if lost:
            self.parts[PROPERTIES] += 1
            self.properties.update(lost)
        if stamp_lost:
            self.parts[TIMESTAMP] += 1

    def __bool__(self) -> bool:
        return bool(self.parts)

    def notices(self, destination: str = "the destination") -> Iterator[str]:
        """One line per part lost, in a fixed order."""
        for part in PARTS:
            count = self.parts.get(part, 0)
            if not count:
                continue
            if part == KEY:
                yield f"{count} message(s) carried a key that {destination} cannot keep: dropped ({SEE})"
            elif part == HEADERS:
                yield f"{count} message(s) carried headers that {destination} cannot keep: dropped ({SEE})"
            elif part == REPEATS:
                yield (f"{count} message(s) carried a header name more than once; {destination} keeps one value "
                       f"per name: the last one was kept ({SEE})")
            elif part == PROPERTIES:
                names = ", ".join(name for name, _ in sorted(self.properties.items(), key=lambda i: (-i[1], i[0])))
                yield (f"{count} message(s) carried properties that {destination} cannot keep ({names}): "
                       f"dropped ({SEE})")
            else:
                yield (f"{count} message(s) carried a timestamp that {destination} cannot keep: they were "
                       f"stamped anew on arrival ({SEE})")
