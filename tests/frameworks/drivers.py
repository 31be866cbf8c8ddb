"""Contract-suite drivers for the Redis job-framework layouts (``?layout=sidekiq|rq|bullmq|celery``).

The contract cases give arbitrary bodies (binary, control characters), which no framework's producer
can make, so these drivers write jobs straight into each framework's keys, shaped field for field as the
real framework writes them (the shapes are what ``tests/frameworks/fixtures.py``'s real producers left,
see docs/internals/job-frameworks.md), with the case's body as the job's payload: Sidekiq's list element,
RQ's and BullMQ's ``data``, kombu's envelope ``body``.  The framework-behaviour tests
(``tests/frameworks/test_*.py``) use the real producers and workers instead.

Each runs in its framework's database of the harness Redis; queue names are fresh per case.
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import json
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import redis

from qctl.models import Message
from qctl.redrive import REDRIVE_COUNT_FIELD as COUNT_FIELD
from qctl.testing.driver import Capabilities, unique_name
from qctl.urls import parse
from tests.frameworks.fixtures import CREATED, forget_all
from tests.redis.driver import free_port

RQ_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
SEP = b"\x06\x16"
COUNT_HEADER = "x-qctl-redrive-count"


def count_headers(raw: bytes | int | None) -> dict[str, int]:
    """A job's stored redrive count as the header qctl shows it."""
    return {} if raw is None else {COUNT_HEADER: int(raw)}


def known_flags(**flags: Any) -> Capabilities:
    """The flags qctl.testing knows of these (one it does not have yet is left out, so that these drivers run
    with the suite both before and after it grows one: carries_timestamps is new)."""
    known = {field.name for field in dataclasses.fields(Capabilities)}
    return Capabilities(**{name: value for name, value in flags.items() if name in known})


class LayoutDriver:
    """What the four share: the URL with ``?layout=``, the errors cases, names."""

    framework = ""
    capabilities: Capabilities

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        base = env[f"QCTL_TEST_{self.framework.upper()}_URL"]
        self.url = f"{base}?layout={self.framework}"
        self.client: redis.Redis = redis.Redis.from_url(base)

    def unique(self, prefix: str = "q") -> str:
        name = unique_name(prefix)
        if not CREATED:
            atexit.register(forget_all)  # the contract suite's driver fixture has no teardown
        CREATED.append((self.framework, name))
        return name

    def messages(self, name: str) -> list[Message]:
        return [Message(queue=name, position=str(i), body=body) for i, body in enumerate(self.contents(name))]

    def contents(self, name: str) -> list[bytes]:
        raise NotImplementedError

    def bad_password_url(self) -> str:
        url = parse(self.env["QCTL_TEST_REDIS_ACL_URL"])
        return f"redis://{url.username}:wrong-password@{url.host}:{url.port}/0?layout={self.framework}"

    def unreachable_url(self) -> str:
        return f"redis://127.0.0.1:{free_port()}/0?layout={self.framework}"

    def make_limited_queue(self, name: str, bodies: list[bytes], limit: int) -> str:
        raise NotImplementedError("Redis counts no reads")


class SidekiqDriver(LayoutDriver):
    """``queue:<name>`` lists of job JSON; here the elements are the case's bodies, as pushed by
    ``Sidekiq::Client`` (``SADD queues`` + ``LPUSH``).  Dead letters by name (``<q>:dlq``): Sidekiq's own
    ``dead`` set is global and holds JSON only (tests/frameworks/test_sidekiq.py covers it)."""

    framework = "sidekiq"
    capabilities = Capabilities(backend="redis", queue_type="sidekiq", dlq_suffix=":dlq", carries_headers=False,
                                dead_letter_metadata=False, missing_queue_is_empty=True)

    def make_queue(self, name: str, messages: list[Message]) -> None:
        key = f"queue:{name}"
        self.client.delete(key)
        self.client.sadd("queues", name)
        if messages:
            self.client.lpush(key, *(m.body for m in messages))

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.make_queue(source, [])
        self.make_queue(dlq, [Message(queue=dlq, position="", body=body) for body in bodies])

    def contents(self, name: str) -> list[bytes]:
        return list(reversed(self.client.lrange(f"queue:{name}", 0, -1)))

    def delete(self, name: str) -> None:
        self.client.delete(f"queue:{name}")
        self.client.srem("queues", name)


class SidekiqJobDriver(SidekiqDriver):
    """Sidekiq jobs as ``Sidekiq::Client.push`` writes them, one per body (the body, as text, its one argument;
    ``contents`` gives the arguments back): for the cases about what a job keeps of its own, qctl's redrive
    count (``x-qctl-redrive-count``), which a bare list element has no place for."""

    def make_queue(self, name: str, messages: list[Message]) -> None:
        super().make_queue(name, [])
        now = time.time()
        if messages:
            self.client.lpush(f"queue:{name}", *(json.dumps(
                {"retry": True, "queue": name, "class": "QctlJob", "args": [m.body.decode()],
                 "jid": uuid.uuid4().hex[:24], "created_at": now, "enqueued_at": now}) for m in messages))

    def messages(self, name: str) -> list[Message]:
        jobs = [json.loads(raw) for raw in reversed(self.client.lrange(f"queue:{name}", 0, -1))]
        return [Message(queue=name, position=str(i), body=job["args"][0].encode(),
                        headers=count_headers(job.get(COUNT_FIELD))) for i, job in enumerate(jobs)]

    def contents(self, name: str) -> list[bytes]:
        return [m.body for m in self.messages(name)]


class RQDriver(LayoutDriver):
    """``rq:queue:<name>`` lists of ids and ``rq:job:<id>`` hashes as ``Job.save`` writes them, the body as
    ``data`` (zlib-compressed, as RQ stores it); ``<name>:failed`` is the FailedJobRegistry, filled as
    ``Job._handle_failure`` does (status failed, score now + failure_ttl, origin = the queue)."""

    framework = "rq"
    capabilities = known_flags(backend="redis", queue_type="rq", dlq_suffix=":failed", carries_headers=False,
                               counts_redrives=True,
                               dead_letter_metadata=True, missing_queue_is_empty=True, carries_timestamps=True)

    def _job(self, pipe: Any, queue: str, body: bytes, *, failed: bool) -> bytes:
        job_id = str(uuid.uuid4()).encode()
        now = datetime.now(UTC).strftime(RQ_TIME)
        pipe.hset(b"rq:job:" + job_id, mapping={
            "created_at": now, "data": zlib.compress(body), "success_callback_name": "",
            "failure_callback_name": "", "stopped_callback_name": "", "started_at": now if failed else "",
            "ended_at": now if failed else "", "last_heartbeat": "", "worker_name": "", "group_id": "",
            "origin": queue, "description": "tests.frameworks.job()", "enqueued_at": now, "timeout": 180,
            "status": "failed" if failed else "queued"})
        return job_id

    def make_queue(self, name: str, messages: list[Message]) -> None:
        failed = name.endswith(":failed")
        queue = name[: -len(":failed")] if failed else name
        key = f"rq:failed:{queue}" if failed else f"rq:queue:{queue}"
        self.client.delete(key)
        pipe = self.client.pipeline()
        pipe.sadd("rq:queues", f"rq:queue:{queue}")
        expiry = time.time() + 31536000
        for i, message in enumerate(messages):
            job_id = self._job(pipe, queue, message.body, failed=failed)
            if failed:
                pipe.zadd(key, {job_id: expiry + i})
            else:
                pipe.rpush(key, job_id)
        pipe.execute()

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.make_queue(source, [])
        self.make_queue(dlq, [Message(queue=dlq, position="", body=body) for body in bodies])

    def _ids(self, name: str) -> list[bytes]:
        if name.endswith(":failed"):
            return list(self.client.zrange(f"rq:failed:{name[: -len(':failed')]}", 0, -1))
        return list(self.client.lrange(f"rq:queue:{name}", 0, -1))

    def contents(self, name: str) -> list[bytes]:
        return [m.body for m in self.messages(name)]

    def messages(self, name: str) -> list[Message]:
        """The jobs with their bodies (``data``), ids and redrive counts, as qctl shows them (``properties.job_id``,
        the ``x-qctl-redrive-count`` header)."""
        ids = self._ids(name)
        pipe = self.client.pipeline()
        for job_id in ids:
            pipe.hmget(b"rq:job:" + job_id, "data", COUNT_FIELD)
        return [Message(queue=name, position=str(i), body=zlib.decompress(data), headers=count_headers(count),
                        properties={"job_id": job_id.decode()})
                for i, (job_id, (data, count)) in enumerate(zip(ids, pipe.execute(), strict=True))]

    def delete(self, name: str) -> None:
        self.client.delete(f"rq:queue:{name}", f"rq:failed:{name}")


class BullMQDriver(LayoutDriver):
    """``bull:<name>:wait`` (LPUSH, workers take from the right) of ids from ``bull:<name>:id``, job hashes
    as ``storeJob`` writes them with the body as ``data``; ``<name>:failed`` is the failed set, filled as
    ``moveToFinished`` does (finishedOn score, failedReason, attemptsMade)."""

    framework = "bullmq"
    capabilities = known_flags(backend="redis", queue_type="bullmq", dlq_suffix=":failed", carries_headers=False,
                               counts_redrives=True,
                               dead_letter_metadata=True, missing_queue_is_empty=True, carries_timestamps=True)

    def make_queue(self, name: str, messages: list[Message]) -> None:
        failed = name.endswith(":failed")
        queue = name[: -len(":failed")] if failed else name
        base = f"bull:{queue}:"
        self.client.delete(base + ("failed" if failed else "wait"))
        self.client.hset(base + "meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:5.81.5"})
        now = int(time.time() * 1000)
        for i, message in enumerate(messages):
            job_id = str(self.client.incr(base + "id"))
            fields: dict[str, Any] = {"name": "qctl-test", "data": message.body, "opts": '{"attempts":0}',
                                      "timestamp": now, "delay": 0, "priority": 0}
            if failed:
                fields.update(processedOn=now, atm=1, ats=1, finishedOn=now + i, failedReason="qctl test failure",
                              stacktrace='["Error: qctl test failure\\n    at test"]')
            self.client.hset(base + job_id, mapping=fields)
            if failed:
                self.client.zadd(base + "failed", {job_id: now + i})
            else:
                self.client.lpush(base + "wait", job_id)

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.make_queue(source, [])
        self.make_queue(dlq, [Message(queue=dlq, position="", body=body) for body in bodies])

    def contents(self, name: str) -> list[bytes]:
        return [m.body for m in self.messages(name)]

    def messages(self, name: str) -> list[Message]:
        """The jobs with their bodies (``data``), ids and names, as qctl shows them (``job_id``, ``task``)."""
        if name.endswith(":failed"):
            base = f"bull:{name[: -len(':failed')]}:"
            ids = self.client.zrange(base + "failed", 0, -1)
        else:
            base = f"bull:{name}:"
            ids = [*reversed(self.client.lrange(base + "wait", 0, -1)),
                   *reversed(self.client.lrange(base + "paused", 0, -1)),
                   *self.client.zrange(base + "prioritized", 0, -1)]
        pipe = self.client.pipeline()
        for job_id in ids:
            pipe.hmget(base.encode() + job_id, "data", "name", COUNT_FIELD)
        return [Message(queue=name, position=str(i), body=data or b"", headers=count_headers(count),
                        properties={"job_id": job_id.decode(), "task": (task or b"").decode()})
                for i, (job_id, (data, task, count)) in enumerate(zip(ids, pipe.execute(), strict=True))]

    def delete(self, name: str) -> None:
        self.client.delete(f"bull:{name}:wait", f"bull:{name}:failed")


class CeleryDriver(LayoutDriver):
    """kombu's priority lists holding its JSON envelopes (``LPUSH``, BRPOP from the right; the case's body
    base64 in ``body``, headers as Celery's task headers, properties as kombu's), and the binding
    ``_kombu.binding.<name>`` a worker's queue declaration leaves.  Celery keeps no dead letters on the
    broker: DLQs by name (``<q>:dlq``, the hand-rolled kind); tests/frameworks/test_celery.py covers
    the unacked restore."""

    framework = "celery"
    capabilities = Capabilities(backend="redis", queue_type="celery", dlq_suffix=":dlq", carries_headers=True,
                                carries_properties=True, dead_letter_metadata=False, missing_queue_is_empty=True)

    def envelope(self, name: str, message: Message) -> bytes:
        properties = {"correlation_id": str(uuid.uuid4()), "delivery_mode": 2,
                      "delivery_info": {"exchange": "", "routing_key": name}, "priority": 0,
                      "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}
        extra = dict(message.properties)
        content_type = extra.pop("content_type", "application/json")
        properties.update(extra)
        return json.dumps({"body": base64.b64encode(message.body).decode(), "content-encoding": "utf-8",
                           "content-type": content_type,
                           "headers": {str(k): v for k, v in message.pairs()}, "properties": properties}).encode()

    def make_queue(self, name: str, messages: list[Message]) -> None:
        self.delete(name)
        self.client.sadd(f"_kombu.binding.{name}", f"{name}\x06\x16\x06\x16{name}")
        if messages:
            self.client.lpush(name, *(self.envelope(name, m) for m in messages))

    def make_dead_letters(self, source: str, dlq: str, bodies: list[bytes]) -> None:
        self.make_queue(source, [])
        self.make_queue(dlq, [Message(queue=dlq, position="", body=body) for body in bodies])

    def _envelopes(self, name: str) -> list[dict[str, Any]]:
        keys = [name.encode()] + [name.encode() + SEP + str(step).encode() for step in range(1, 10)]
        found = []
        for key in keys:
            found += [json.loads(raw) for raw in reversed(self.client.lrange(key, 0, -1))]
        return found

    def messages(self, name: str) -> list[Message]:
        found = []
        for i, envelope in enumerate(self._envelopes(name)):
            headers = envelope.get("headers") or {}
            properties = {**envelope["properties"], "content_type": envelope.get("content-type")}
            found.append(Message(queue=name, position=str(i), body=base64.b64decode(envelope["body"]),
                                 headers=headers, header_pairs=tuple(headers.items()), properties=properties))
        return found

    def contents(self, name: str) -> list[bytes]:
        return [m.body for m in self.messages(name)]

    def delete(self, name: str) -> None:
        self.client.delete(name, *(name.encode() + SEP + str(step).encode() for step in range(1, 10)))
