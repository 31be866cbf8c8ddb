"""Counting the SQS requests a real qctl process makes: how many of each, how many at once, in what order.

:func:`probed` gives an environment for ``python -m qctl`` whose ``sitecustomize`` wraps
``Connection.call`` -- the one door every SQS request of the adapter goes through, on botocore's path and on
the direct one (:mod:`qctl.adapters.sqs.wire`) alike -- and writes what it saw as JSON when the process
exits:

* ``calls``: requests per operation (botocore's method names), ``wire``: how many went the direct way;
* ``peak``: the most requests of each operation in flight at once (``*``: of any), i.e. threads in flight;
* ``overlaps``: how often a request started while one of another operation was in flight
  (``send_message_batch during receive_message``: a send started while a receive was under way);
* ``attributes``: per queue URL, the attribute lists GetQueueAttributes asked;
* ``early_deletes``: receipt handles deleted before a SendMessageBatch had confirmed their body (the promise
  is that there are none), ``deleted``: how many handles were deleted, ``received``: how many messages
  the receives brought;
* ``send_groups_overlapping``: SendMessageBatch requests that started while another one carrying the same
  MessageGroupId was in flight (FIFO order needs none).

``delay`` holds every request that long inside the counted region, so that requests that can overlap do,
whatever the machine's load: the tests count, they never time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SITECUSTOMIZE = r'''
import atexit, json, os, threading, time
from collections import Counter

from qctl.adapters.sqs import client as _client, wire as _wire

_out, _delay = os.environ["QCTL_TEST_PROBE"], float(os.environ.get("QCTL_TEST_PROBE_DELAY", "0"))
_lock = threading.Lock()
_calls, _now, _peak, _overlaps = Counter(), Counter(), Counter(), Counter()
_attributes, _bodies, _confirmed, _early = {}, {}, set(), []
_groups = Counter()
_state = {"wire": 0, "deleted": 0, "received": 0, "group_overlaps": 0}
_call = _client.Connection.call
_attempt = _wire.Wire._attempt
if os.environ.get("QCTL_TEST_PROBE_NO_WIRE"):
    _client.Connection.wire = property(lambda self: None)


def _attempted(self, operation, body):
    with _lock:
        _state["wire"] += 1
    return _attempt(self, operation, body)


def call(self, operation, what, **params):
    groups = set()
    with _lock:
        if operation == "delete_message_batch":
            for entry in params["Entries"]:
                _state["deleted"] += 1
                if _bodies.get(entry["ReceiptHandle"]) not in _confirmed:
                    _early.append(entry["ReceiptHandle"])
        if operation == "get_queue_attributes":
            _attributes.setdefault(params["QueueUrl"], []).append(sorted(params["AttributeNames"]))
        if operation == "send_message_batch":
            groups = {e["MessageGroupId"] for e in params["Entries"] if "MessageGroupId" in e}
            if any(_groups[g] for g in groups):
                _state["group_overlaps"] += 1
            _groups.update(groups)
        for other, count in _now.items():
            if count and other != operation:
                _overlaps[f"{operation} during {other}"] += 1
        _calls[operation] += 1
        _now[operation] += 1
        _peak[operation] = max(_peak[operation], _now[operation])
        _peak["*"] = max(_peak["*"], sum(_now.values()))
    try:
        if _delay:
            time.sleep(_delay)
        answer = _call(self, operation, what, **params)
        with _lock:
            if operation == "receive_message":
                _state["received"] += len(answer.get("Messages") or [])
                for message in answer.get("Messages") or []:
                    _bodies[message["ReceiptHandle"]] = message["Body"]
            elif operation == "send_message_batch":
                ok = {entry["Id"] for entry in answer.get("Successful") or []}
                _confirmed.update(e["MessageBody"] for e in params["Entries"] if e["Id"] in ok)
        return answer
    finally:
        with _lock:
            _now[operation] -= 1
            _groups.subtract(groups)


def _dump():
    with open(_out, "w") as file:
        json.dump({"calls": _calls, "peak": _peak, "overlaps": _overlaps, "attributes": _attributes,
                   "early_deletes": _early, "deleted": _state["deleted"], "received": _state["received"],
                   "wire": _state["wire"],
                   "send_groups_overlapping": _state["group_overlaps"]}, file)


_client.Connection.call = call
_wire.Wire._attempt = _attempted
atexit.register(_dump)
'''


class Probe:
    def __init__(self, directory: Path, *, delay: float = 0.0, wire: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.out = directory / "probe.json"
        path = os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.env: dict[str, str] = {"PYTHONPATH": path, "QCTL_TEST_PROBE": str(self.out),
                                    "QCTL_TEST_PROBE_DELAY": str(delay)}
        if not wire:
            self.env["QCTL_TEST_PROBE_NO_WIRE"] = "1"

    def result(self) -> Mapping[str, Any]:
        data: dict[str, Any] = json.loads(self.out.read_text())
        return data


def probed(directory: Path, *, delay: float = 0.0, wire: bool = True) -> Probe:
    return Probe(directory, delay=delay, wire=wire)
