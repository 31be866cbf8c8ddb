"""Queue addresses for ``qctl move``: ``QUEUE``, ``URL#QUEUE`` or ``PROFILE:QUEUE``.

* Text with ``://`` is ``URL#QUEUE``: everything after the last ``#`` is the
  queue (``#`` inside a queue name is written ``%23``).
* Else, text whose part before the first ``:`` names a profile of the config
  file is ``PROFILE:QUEUE`` (a Redis key like ``orders:dlq`` stays a queue
  unless a profile is called ``orders``; write ``-p orders orders:dlq`` or the
  URL form then).
* Else it is a queue on the broker of ``-u``/``-p``/``QCTL_URL``...
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from qctl import config
from qctl.config import Target
from qctl.errors import UsageError


@dataclass(frozen=True, slots=True)
class Address:
    target: Target
    queue: str


def resolve(text: str, loaded: config.Config, default: Target, *, timeout: float,
            management_url: str | None = None) -> Address:
    if "://" in text:
        url, hash_mark, queue = text.rpartition("#")
        if not hash_mark or not url:
            raise UsageError(f"{_shown(text)!r} names a broker but no queue", hint="write URL#QUEUE")
        queue = unquote(queue)
        if not queue:
            raise UsageError(f"{_shown(text)!r} has an empty queue name after '#'")
        return Address(config.resolve(loaded, url=url, management_url=management_url, timeout=timeout), queue)
    profile, colon, queue = text.partition(":")
    if colon and profile in loaded.profiles:
        if not queue:
            raise UsageError(f"{text!r} names profile {profile!r} but no queue", hint="write PROFILE:QUEUE")
        return Address(config.resolve(loaded, profile=profile, management_url=management_url, timeout=timeout),
                       queue)
    if not text:
        raise UsageError("an empty queue name")
    return Address(default, text)


def _shown(text: str) -> str:
    from qctl.urls import redact

    return redact(text)
