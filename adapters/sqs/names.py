"""Queue names, URLs and ARNs: what SQS accepts, checked before any request.

A QUEUE argument is a queue name (``orders``, ``orders.fifo``) or the queue's
URL (``https://sqs.eu-west-1.amazonaws.com/123456789012/orders``, for a queue
of another account); either way the name is the URL's last path segment.  A
dead-letter queue is named by an ARN in a RedrivePolicy, whose last field is
the name (SQS requires a DLQ in the same account and region as its source).
"""

from __future__ import annotations

import fnmatch
import re

from qctl.errors import UsageError

FIFO_SUFFIX = ".fifo"
MAX_NAME = 80
_NAME = re.compile(r"[A-Za-z0-9_-]+")
GLOB_CHARS = "*?["


def is_url(queue: str) -> bool:
    return queue.startswith(("http://", "https://"))


def name_of(queue: str) -> str:
    """The queue's name, from a name or a queue URL."""
    return queue.rstrip("/").rsplit("/", 1)[-1] if is_url(queue) else queue


def name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def url_beside(url: str, name: str) -> str:
    """The URL of queue ``name`` in the same account and endpoint as the queue at ``url``."""
    return url.rstrip("/").rsplit("/", 1)[0] + "/" + name


def is_fifo(queue: str) -> bool:
    return name_of(queue).endswith(FIFO_SUFFIX)


def check(queue: str) -> None:
    """UsageError (exit 2) unless ``queue`` names a queue SQS could have."""
    name = name_of(queue)
    base = name[: -len(FIFO_SUFFIX)] if name.endswith(FIFO_SUFFIX) else name
    if not (len(name) <= MAX_NAME and base and _NAME.fullmatch(base)):
        raise UsageError(f"{queue!r} is not an SQS queue name",
                         hint="1 to 80 letters, digits, hyphens and underscores, a FIFO queue's ending in .fifo; "
                              "or give the queue's URL")


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in GLOB_CHARS)


def literal_prefix(pattern: str) -> str:
    """What every name a glob matches starts with (ListQueues' QueueNamePrefix)."""
    cut = min((pattern.index(char) for char in GLOB_CHARS if char in pattern), default=len(pattern))
    return pattern[:cut]


def matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
