"""MQTT topic names and filters: checked before anything is sent, matched without the driver.

A QUEUE on MQTT is a topic filter (``sensors/#``): ``#`` only as the whole
last level, ``+`` only as a whole level, no U+0000, at most 65,535 bytes of
UTF-8 (MQTT 3.1.1 and 5, section 4.7).  A broker that gets a malformed filter
closes the connection, which would surface as "cannot reach the broker"
(exit 3); checking first makes it the usage error it is (exit 2).  Control
characters are refused too: the MQTT spec says a topic SHOULD NOT hold them,
and a terminal would show them as escapes nobody can retype.

Where a message goes is a topic *name*: no wildcards.  Topics that start with
``$`` belong to the broker (``$SYS/...``) and are never written to.
"""

from __future__ import annotations

from qctl.errors import UsageError

MAX_BYTES = 65_535
BROKER_ROW = "$SYS"  # the stats row for the broker itself


def _text_problem(text: str) -> str | None:
    if not text:
        return "it is empty"
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if len(encoded) > MAX_BYTES:
        return f"it is {len(encoded):,} bytes long (MQTT allows {MAX_BYTES:,})"
    for char in text:
        code = ord(char)
        if code == 0:
            return "it contains U+0000"
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"it contains the control character U+{code:04X}"
    return None


def filter_problem(text: str) -> str | None:
    """Why ``text`` is not a valid MQTT topic filter, or None."""
    problem = _text_problem(text)
    if problem:
        return problem
    levels = text.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be the whole last level (sensors/#)"
        if "+" in level and level != "+":
            return "'+' must be a whole level (sensors/+/temperature)"
    return None


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot be a topic a message is published to, or None."""
    problem = _text_problem(text)
    if problem:
        return problem
    if "#" in text or "+" in text:
        return "a topic to publish to has no wildcards (# or +)"
    if text.startswith("$"):
        return "topics starting with '$' belong to the broker"
    return None


def check_filter(text: str) -> None:
    problem = filter_problem(text)
    if problem:
        raise UsageError(f"{text!r} is not an MQTT topic filter: {problem}",
                         hint="a QUEUE on MQTT is a topic filter such as 'sensors/#' or 'sensors/+/temp'")


def is_filter(text: str) -> bool:
    """Has wildcards: a set of topics rather than one."""
    return "#" in text or "+" in text


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching (section 4.7), including the rule that wildcards never match a leading ``$``."""
    if topic.startswith("$") and topic_filter[:1] in ("#", "+"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True  # also matches the parent level itself: sensors/# matches sensors
        if index >= len(levels):
            return False
        if part != "+" and part != levels[index]:
            return False
    return len(levels) == len(wanted)


def subtree(topic_filter: str) -> str | None:
    """The root of a whole-subtree filter (``sensors`` for ``sensors/#``, ``""`` for ``#``), else None."""
    if topic_filter == "#":
        return ""
    if topic_filter.endswith("/#") and not is_filter(topic_filter[:-2]):
        return topic_filter[:-2]
    return None


def rerooted(source_filter: str, dest_filter: str, topic: str) -> str | None:
    """``topic`` (read under ``source_filter``) moved to the same place under ``dest_filter``: both must be
    whole subtrees (``old/#`` -> ``new/#`` makes ``old/a/b`` ``new/a/b``); None when that cannot be said."""
    source, dest = subtree(source_filter), subtree(dest_filter)
    if source is None or dest is None:
        return None
    if source == "":
        rest: str | None = None if topic.startswith("$") else topic
    elif topic == source:
        return dest or None  # the subtree's own root topic
    else:
        rest = topic[len(source) + 1:] if topic.startswith(source + "/") else None
    if rest is None:
        return None
    moved = f"{dest}/{rest}" if dest else rest
    return moved if name_problem(moved) is None else None
