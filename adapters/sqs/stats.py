"""``qctl stats`` for SQS: one GetQueueAttributes per queue, run concurrently.

SQS has no call that answers for many queues, so a listing is ListQueues (1,000
URLs a page, following NextToken; ``QueueNamePrefix`` for a glob's literal
start) and then one GetQueueAttributes per queue, asking only the four
attributes a row shows, on the adapter's thread pool -- a thousand queues
cost a thousand requests, but :data:`~.client.POOL` at a time, not one after
another (and on a plain-HTTP endpoint through :mod:`.wire`, not botocore).

Per row: ``depth`` is ApproximateNumberOfMessages, ``in_flight``
ApproximateNumberOfMessagesNotVisible, and the extra field ``delayed``
ApproximateNumberOfMessagesDelayed; ``type`` is ``standard`` or ``fifo``.
The dead-letter queue is the RedrivePolicy's ``deadLetterTargetArn`` (its
depth asked too when the listing does not hold it), with
``max_receive_count``.  The reverse link, ``dead_letter_sources`` (the queues
whose RedrivePolicy names this one), the cheaper of two ways
(:func:`dead_letter_links`): from every queue's RedrivePolicy (an SQS DLQ
lives in its sources' account and region, so a listing of the account holds
them all: free in a listing of everything, and for a glob one ListQueues page
per 1,000 queues plus a GetQueueAttributes for each queue the glob left out),
or one ListDeadLetterSourceQueues per row.  ``oldest_age`` is null
(SQS reports it only as the CloudWatch metric ApproximateAgeOfOldestMessage;
receiving a message to look at its SentTimestamp would count a receive), and
so are ``consumers``, ``lag`` and the in/out totals.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
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


def list_queues(conn: Connection, prefix: str | None, *, budget: int | None = None,
                free: Collection[str] = ()) -> dict[str, str] | None:
    """name -> URL of every queue (whose name starts with ``prefix``); None once listing would cost more than
    ``budget``: its pages plus one request for every queue found that is not in ``free``."""
    found: dict[str, str] = {}
    token: str | None = None
    pages = extra = 0
    while True:
        params: dict[str, Any] = {"MaxResults": PAGE}
        if prefix:
            params["QueueNamePrefix"] = prefix
        if token:
            params["NextToken"] = token
        page = conn.call("list_queues", "list queues", **params)
        pages += 1
        for url in page.get("QueueUrls") or []:
            name = names.name_of(url)
            extra += name not in found and name not in free
            found[name] = url
        token = page.get("NextToken")
        if not token:
            return found
        if budget is not None and pages + extra > budget:
            return None


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
    listing: dict[str, str] | None = None  # every queue of the account, when it was listed anyway
    if everything:
        listing = list_queues(conn, None)
        assert listing is not None
        urls.update(listing)
    for prefix in dict.fromkeys(names.literal_prefix(glob) for glob in globs):
        listed = list_queues(conn, prefix or None)
        assert listed is not None
        if not prefix:
            listing = listed
        urls.update({name: url for name, url in listed.items() if any(names.matches(name, g) for g in globs)})
    for name, url in urls.items():
        conn.learn(name, url)
    explicit = dict(zip((names.name_of(q) for q in named), conn.fan_out(conn.url_of, named), strict=True))
    urls.update(explicit)
    attributes = _attributes(conn, urls, required=set(explicit))
    policies = {name: redrive_policy(attrs) for name, attrs in attributes.items()}
    missing = {p.dead_letter_queue: names.url_beside(urls[name], p.dead_letter_queue)
               for name, p in policies.items() if p and p.dead_letter_queue not in attributes}
    dead = _attributes(conn, missing, required=set())
    sources = dead_letter_links(conn, {name: urls[name] for name in attributes}, policies, listing)
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


def dead_letter_links(conn: Connection, rows: dict[str, str], policies: dict[str, Policy | None],
                      listing: dict[str, str] | None) -> dict[str, list[str]]:
    """name -> the queues whose RedrivePolicy names it, for each row (name -> URL; ``policies`` holds theirs).

    Two ways to the same answer, the cheaper taken: every queue of the account with its RedrivePolicy (the
    listing, which a stats of everything or of a glob without a literal start has already, plus one
    GetQueueAttributes for each queue that is not a row), or one ListDeadLetterSourceQueues per row.  An SQS
    DLQ lives in its sources' account and region, so the listing holds every source of a row it lists;
    a row the listing does not hold (a queue URL of another account, or one made meanwhile) is asked."""
    if listing is None and len(rows) > 1:
        listing = list_queues(conn, None, budget=len(rows), free=rows)
    listed = {name for name, url in rows.items() if listing is not None and listing.get(name) == url}
    others = {name: url for name, url in (listing or {}).items() if name not in rows}
    if listing is None or len(others) >= len(listed):  # the listing's pages are spent; what is left to ask
        listed, others = set(), {}
    policies = dict(policies)
    fetched = _attributes(conn, others, required=set(), wanted=("RedrivePolicy",))
    policies.update({name: redrive_policy(attrs) for name, attrs in fetched.items()})
    sources: dict[str, list[str]] = {name: [] for name in listed}
    for name, policy in policies.items():
        if policy and policy.dead_letter_queue in sources and (name in listed or name in fetched):
            sources[policy.dead_letter_queue].append(name)
    asked = [name for name in rows if name not in listed]
    sources.update(zip(asked, conn.fan_out(lambda name: dead_letter_sources(conn, rows[name]), asked), strict=True))
    return sources


def _attributes(conn: Connection, urls: dict[str, str], *, required: set[str],
                wanted: Sequence[str] = ATTRIBUTES) -> dict[str, dict[str, str]]:
    """name -> attributes, fetched concurrently; a listed queue deleted meanwhile is left out."""

    def fetch(name: str) -> dict[str, str] | None:
        try:
            return conn.attributes(urls[name], wanted)
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
