"""The job functions RQ workers import (``rq_jobs.flaky``), run in .brokers/frameworks-venv.

``flaky`` raises the named exception while the worker's environment has ``QCTL_JOBS_FAIL=1`` and returns
normally otherwise: the same job first fails for real (traceback, ``rq:failed:<q>``) and, once qctl has
retried it, completes under a worker started with ``QCTL_JOBS_FAIL=0``.
"""

from __future__ import annotations

import builtins
import os


class QctlJobError(Exception):
    """The exception class for names that are not builtins (``flaky("QctlJobError", ...)``)."""


def exception_class(name: str) -> type[BaseException]:
    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return type(name, (QctlJobError,), {"__module__": __name__})


def flaky(exc_name: str, message: str) -> str:
    if os.environ.get("QCTL_JOBS_FAIL") == "1":
        raise exception_class(exc_name)(message)
    return "ok"


def succeed(i: int) -> int:
    return i
