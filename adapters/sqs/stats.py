"""``qctl stats`` for SQS: one GetQueueAttributes per queue, run concurrently.

SQS has no call that answers for many queues, so a listing is ListQueues (1,000
URLs a page, following NextToken; ``QueueNamePrefix`` for a glob's literal
start) and then one GetQueueAttributes per queue on the adapter's thread
pool -- a thousand queues cost a thousand requests, but :data:`~.client.POOL`
at a time, not one after another.

Per row: ``depth`` is ApproximateNumberOfMessages, ``in_flight``
ApproximateNumberOfMessagesNotVisible, and the extra field ``delayed``
ApproximateNumberOfMessagesDelayed; ``type`` is ``standard`` or ``fifo``.
The dead-letter queue is the RedrivePolicy's ``deadLetterTargetArn`` (its
depth asked too when the listing does not hold it), with
``max_receive_count``.  The reverse link, ``dead_letter_sources`` (the queues
whose RedrivePolicy names this one): in a listing of every queue it comes from
the rows themselves (an SQS DLQ lives in its sources' account and region, so
the listing holds them all); for named queues and globs it is
ListDeadLetterSourceQueues, one more request per row.  ``oldest_age`` is null
(SQS reports it only as the CloudWatch metric ApproximateAgeOfOldestMessage;
receiving a message to look at its SentTimestamp would count a receive), and
so are ``consumers``, ``lag`` and the in/out totals.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qctl.adapters.sqs import names
from qctl.adapters.sqs.client import Connection
from qctl.errors import QueueNotFound
from qctl.models import QueueStats

BACKEND = "sqs"
ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed", "RedrivePolicy")
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Policy:
    """A queue's RedrivePolicy."""

    dead_letter_queue: str
    max_receive_count: int | None


def redrive_policy(attributes: dict[str, str]) -> Policy | None:
    text = attributes.get("RedrivePolicy")
    if not text:
        return None
    try:
        policy = json.loads(text)
    except ValueError:
        return None
    arn = policy.get("deadLetterTargetArn") if isinstance(policy, dict) else None
    if not arn:
        return None
    count = policy.get("maxReceiveCount")
    try:
        limit = int(count) if count is not None else None
    except (TypeError, ValueError):
        limit = None
    return Policy(names.name_from_arn(str(arn)), limit)


def list_queues(conn: Connection, prefix: str | None) -> dict[str, str]:
    """name -> URL of every queue (whose name starts with ``prefix``)."""
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"MaxResults": PAGE}
        if prefix:
            params["QueueNamePrefix"] = prefix
        if token:
            params["NextToken"] = token
        page = conn.call("list_queues", "list queues", **params)
        for url in page.get("QueueUrls") or []:
            found[names.name_of(url)] = url
        token = page.get("NextToken")
        if not token:
            return found


def dead_letter_sources(conn: Connection, url: str) -> list[str]:
    sources: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"QueueUrl": url, "MaxResults": PAGE}
        if token:
            params["NextToken"] = token
        page = conn.call("list_dead_letter_source_queues", f"dead-letter sources of {names.name_of(url)!r}",
                         **params)
        sources += [names.name_of(source) for source in page.get("queueUrls") or []]
        token = page.get("NextToken")
        if not token:
            return sorted(sources)


def collect(conn: Connection, patterns: Sequence[str]) -> list[QueueStats]:
    everything = not patterns
    named = [p for p in patterns if not names.is_glob(p)]
    globs = [p for p in patterns if names.is_glob(p)]
    urls: dict[str, str] = {}
    if everything:
        urls.update(list_queues(conn, None))
    for prefix in dict.fromkeys(names.literal_prefix(glob) for glob in globs):
        urls.update({name: url for name, url in list_queues(conn, prefix or None).items()
                     if any(names.matches(name, g) for g in globs)})
    for name, url in urls.items():
        conn.learn(name, url)
    explicit = dict(zip((names.name_of(q) for q in named), conn.fan_out(conn.url_of, named), strict=True))
    urls.update(explicit)
    attributes = _attributes(conn, urls, required=set(explicit))
    policies = {name: redrive_policy(attrs) for name, attrs in attributes.items()}
    missing = {p.dead_letter_queue: names.url_beside(urls[name], p.dead_letter_queue)
               for name, p in policies.items() if p and p.dead_letter_queue not in attributes}
    dead = _attributes(conn, missing, required=set())
    if everything:
        sources: dict[str, list[str]] = {name: [] for name in attributes}
        for name, policy in policies.items():
            if policy and policy.dead_letter_queue in sources:
                sources[policy.dead_letter_queue].append(name)
    else:
        found = conn.fan_out(lambda name: dead_letter_sources(conn, urls[name]), list(attributes))
        sources = dict(zip(attributes, found, strict=True))
    rows = []
    for name in sorted(attributes):
        attrs, policy = attributes[name], policies[name]
        dlq = policy.dead_letter_queue if policy else None
        dlq_attrs = attributes.get(dlq) if dlq in attributes else dead.get(dlq or "")
        rows.append(QueueStats(
            backend=BACKEND, queue=name, type="fifo" if names.is_fifo(name) else "standard",
            depth=_count(attrs, "ApproximateNumberOfMessages"),
            in_flight=_count(attrs, "ApproximateNumberOfMessagesNotVisible"),
            dead_letter_queue=dlq,
            dead_letter_depth=_count(dlq_attrs, "ApproximateNumberOfMessages") if dlq_attrs is not None else None,
            extra={"delayed": _count(attrs, "ApproximateNumberOfMessagesDelayed"),
                   "max_receive_count": policy.max_receive_count if policy else None,
                   "dead_letter_sources": sorted(sources.get(name, []))},
        ))
    return rows


def _attributes(conn: Connection, urls: dict[str, str], *, required: set[str]) -> dict[str, dict[str, str]]:
    """name -> attributes, fetched concurrently; a listed queue deleted meanwhile is left out."""

    def fetch(name: str) -> dict[str, str] | None:
        try:
            return conn.attributes(urls[name], ATTRIBUTES)
        except QueueNotFound:
            if name in required:
                raise QueueNotFound(f"queue {name!r} not found at {conn.where}",
                                    hint="list queues with 'qctl stats'") from None
            return None

    order = list(urls)
    fetched = conn.fan_out(fetch, order)
    return {name: attrs for name, attrs in zip(order, fetched, strict=True) if attrs is not None}


def _count(attributes: dict[str, str] | None, name: str) -> int | None:
    value = (attributes or {}).get(name)
    return int(value) if value is not None and str(value).isdigit() else None
