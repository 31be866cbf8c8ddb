"""SQS's own redrive: a message move task (StartMessageMoveTask), which the core polls and may cancel.

The engine asks for one only for a whole-queue redrive to the DLQ's one source
queue (no ``--to``, ``--limit``, ``--where``, ``--max-redrives``; see
``qctl.redrive.RedriveRules.server_move``) from a standard DLQ.  The task is
started with DestinationArn set to that source queue rather than left out
("back to each message's source"): the result then says exactly where every
message went, and ElasticMQ's "back to source" works only when the
RedrivePolicy was given at CreateQueue (set later with SetQueueAttributes,
its task fails inside the server and the request hangs until ElasticMQ's 21 s
ask timeout, then 503).  ``--rate`` is MaxNumberOfMessagesPerSecond (AWS takes
1 to 500; another rate moves client-side).

:meth:`SQSMoveTask.poll` reads ListMessageMoveTasks (ApproximateNumberOfMessagesMoved,
Status); :meth:`SQSMoveTask.cancel` is CancelMessageMoveTask, after which the
task stops and what it moved stays moved.  A task is found in the listing by
its handle, and after it stops (AWS lists a handle only while a task runs) by
its StartedTimestamp.  ElasticMQ drops a cancelled task from the listing
altogether; then the count CancelMessageMoveTask answered is the result.

No task is started -- the engine's client-side mover runs instead -- when the
server has no such API or refuses it (moto answers 500 NotImplemented; an IAM
role may lack sqs:StartMessageMoveTask), when the DLQ is empty, or for FIFO
queues (AWS moves FIFO DLQs too, but ElasticMQ 1.7.1's task reports COMPLETED
having moved nothing: its FifoMessageQueue never fills the queue the task
pops from; the client-side mover keeps group order and counts redrives).
A task already running on the DLQ is exit 3: two movers at once would compete.
"""

from __future__ import annotations

import time
from typing import Any

from botocore import exceptions as bex  # type: ignore[import-untyped]

from qctl.adapters.sqs.client import Connection
from qctl.adapters.sqs.errors import BUSY, code_of, message_of, translate
from qctl.adapters.sqs.names import name_from_arn, name_of
from qctl.adapters.sqs.notes import Notes
from qctl.errors import BrokerUnavailable

MAX_RATE = 500
POLL_INTERVALS = (0.2, 0.5)  # then every POLL_INTERVAL
POLL_INTERVAL = 1.0
RUNNING = ("RUNNING", "CANCELLING")
FINISHED = ("COMPLETED", "CANCELLED")
CLOCK_SKEW_MS = 60_000


def start(conn: Connection, source_url: str, target_url: str, rate: int | None, notes: Notes) -> SQSMoveTask | None:
    source = name_of(source_url)
    source_arn = conn.attributes(source_url, ["QueueArn"], "ARN")["QueueArn"]
    target_arn = conn.attributes(target_url, ["QueueArn"], "ARN")["QueueArn"]
    what = f"start a message move task on {source!r}"
    params: dict[str, Any] = {"SourceArn": source_arn, "DestinationArn": target_arn}
    if rate is not None:
        params["MaxNumberOfMessagesPerSecond"] = rate
    requested = time.time() * 1000
    try:
        running = [task for task in _tasks(conn, source_arn) if task.get("Status") in RUNNING]
        if running:
            raise _already_running(source)
        handle = str(conn.client.start_message_move_task(**params)["TaskHandle"])
    except bex.ClientError as exc:
        code, text = code_of(exc), message_of(exc)
        if code in BUSY:
            raise _translated(exc, conn, what) from None
        if "already running" in text.lower():
            raise _already_running(source) from None
        said = f"{code or 'refused'}: {text}"
        notes.add("no-task", 1, lambda _n: f"SQS did not start a message move task on {source!r} ({said}): "
                                           f"moved client-side")
        return None
    except Exception as exc:
        raise _translated(exc, conn, what) from None
    return SQSMoveTask(conn, source_arn, target_arn, handle, requested)


def _translated(exc: Exception, conn: Connection, what: str) -> Exception:
    return translate(exc, conn.where, what, conn.timeout) or exc


def _tasks(conn: Connection, source_arn: str) -> list[dict[str, Any]]:
    return list(conn.client.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results") or [])


def _already_running(source: str) -> BrokerUnavailable:
    return BrokerUnavailable(f"a message move task is already running on {source!r}",
                             hint="wait for it or cancel it (aws sqs list-message-move-tasks / "
                                  "cancel-message-move-task), then run qctl redrive again")


class SQSMoveTask:
    def __init__(self, conn: Connection, source_arn: str, target_arn: str, handle: str, requested_ms: float) -> None:
        self.conn = conn
        self.source_arn = source_arn
        self.target_arn = target_arn
        self.handle = handle
        self.requested_ms = requested_ms
        self.source = name_from_arn(source_arn)
        self._started: int | None = None  # its StartedTimestamp, once seen
        self._moved = 0
        self._polls = 0
        self._cancel_asked = False
        self._cancelled: int | None = None  # what CancelMessageMoveTask said it had moved

    def poll(self) -> tuple[int, bool]:
        time.sleep(POLL_INTERVALS[self._polls] if self._polls < len(POLL_INTERVALS) else POLL_INTERVAL)
        self._polls += 1
        listed = self.conn.call("list_message_move_tasks", f"follow the message move task on {self.source!r}",
                                SourceArn=self.source_arn, MaxResults=10)
        mine = self._find(list(listed.get("Results") or []))
        if mine is None:
            if self._cancel_asked:
                return max(self._moved, self._cancelled or 0), True
            if self._polls > 30:
                raise BrokerUnavailable(f"the message move task on {self.source!r} is not listed by SQS",
                                        hint="see aws sqs list-message-move-tasks; nothing was lost")
            return self._moved, False
        self._moved = max(self._moved, int(mine.get("ApproximateNumberOfMessagesMoved") or 0))
        status = str(mine.get("Status") or "")
        if status == "FAILED":
            raise BrokerUnavailable(f"the SQS message move task on {self.source!r} failed after moving "
                                    f"{self._moved} message(s): {mine.get('FailureReason') or 'no reason given'}; "
                                    f"the rest are still in {self.source!r}",
                                    hint="run qctl redrive again (with --to it moves them client-side)")
        return self._moved, status in FINISHED

    def _find(self, tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
        for task in tasks:
            if task.get("TaskHandle") == self.handle:
                self._started = task.get("StartedTimestamp")
                return task
        if self._started is not None:
            return next((task for task in tasks if task.get("StartedTimestamp") == self._started), None)
        if self._cancel_asked or not tasks:
            return None
        newest = tasks[0]  # AWS lists the newest first and names no handle once a task stopped
        started = newest.get("StartedTimestamp")
        if (newest.get("DestinationArn") == self.target_arn and isinstance(started, int)
                and started >= self.requested_ms - CLOCK_SKEW_MS):
            self._started = started
            return newest
        return None

    def cancel(self) -> None:
        self._cancel_asked = True
        try:
            answer = self.conn.client.cancel_message_move_task(TaskHandle=self.handle)
        except bex.ClientError as exc:
            if code_of(exc) == "ResourceNotFoundException":
                return  # it finished meanwhile: the next poll reads its count
            raise _translated(exc, self.conn, f"cancel the message move task on {self.source!r}") from None
        except Exception as exc:
            raise _translated(exc, self.conn, f"cancel the message move task on {self.source!r}") from None
        self._cancelled = int(answer.get("ApproximateNumberOfMessagesMoved") or 0)
