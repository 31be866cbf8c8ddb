"""``qctl ping`` for Redis: connect, authenticate, version, the ACL permissions qctl's commands need, round trip.

Permissions are read with ``ACL WHOAMI`` and, where the user may, ``ACL GETUSER``; otherwise (and
always, for the answer) each command class is tried on a key that does not exist, which changes
nothing: LRANGE (read), LTRIM (write), EVALSHA of a script that is not loaded (scripts), SCAN
(listing).  A user limited to some key patterns gets a ✗ with the patterns when GETUSER shows them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from redis import exceptions as rex

from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.keys import key_name
from qctl.models import Check
from qctl.urls import redact

PROBES: tuple[tuple[str, str, Callable[[Client, str], Any]], ...] = (
    ("list", "stats", lambda c, _k: c.execute_command("SCAN", 0, "COUNT", 1)),  # type: ignore[no-untyped-call]
    ("read", "stats, peek, backup", lambda c, k: c.execute_command("LRANGE", k, 0, 0)),  # type: ignore[no-untyped-call]
    ("write", "purge, redrive, move, restore",
     lambda c, k: c.execute_command("LTRIM", k, 0, -1)),  # type: ignore[no-untyped-call]
    ("scripts", "stats, purge, redrive, move",
     lambda c, k: c.execute_command("EVALSHA", "0" * 40, 1, k)),  # type: ignore[no-untyped-call]
)


def ping(connect: Callable[[], Client], where: str) -> list[Check]:
    started = time.monotonic()
    try:
        client = connect()
        client.ping()
    except (rex.AuthenticationError, rex.AuthenticationWrongNumberOfArgsError) as exc:
        return [Check(check="connect", ok=True, detail=where),
                Check(check="authenticate", ok=False, detail=redact(str(exc)) or "wrong user or password")]
    except rex.ResponseError as exc:
        if str(exc).startswith(("WRONGPASS", "NOAUTH", "invalid password")):
            return [Check(check="connect", ok=True, detail=where),
                    Check(check="authenticate", ok=False, detail=redact(str(exc)))]
        return [Check(check="connect", ok=False, detail=f"{where}: {redact(str(exc))}")]
    except (rex.RedisError, OSError) as exc:
        return [Check(check="connect", ok=False, detail=f"{where}: {redact(str(exc)) or type(exc).__name__}")]
    checks = [Check(check="connect", ok=True, detail=where),
              Check(check="authenticate", ok=True, detail=_whoami(client))]
    info = _safe(lambda: client.info("server"))
    version = info.get("redis_version") if isinstance(info, dict) else None
    checks.append(Check(check="version", ok=version is not None, detail=f"Redis {version}" if version
                        else "INFO is not allowed for this user"))
    key = f"qctl:ping:{uuid.uuid4().hex}"
    patterns = _key_patterns(client)
    for name, needed_by, probe in PROBES:
        try:
            probe(client, key)
            ok, detail = True, "allowed"
        except rex.NoScriptError:
            ok, detail = True, "allowed"
        except rex.NoPermissionError as exc:
            ok, detail = False, str(exc)
            if patterns:
                detail += f" (this user's keys: {patterns})"
        except rex.RedisError as exc:
            ok, detail = None, str(exc)
        checks.append(Check(check=name, ok=ok, detail=detail, needed_by=needed_by))
    rtt = time.monotonic()
    client.ping()
    took, total = (time.monotonic() - rtt) * 1000, (rtt - started) * 1000
    checks.append(Check(check="round trip", ok=True, detail=f"{took:.1f} ms (all checks {total:.0f} ms)"))
    return checks


def _whoami(client: Client) -> str:
    user = _safe(lambda: client.execute_command("ACL", "WHOAMI"))  # type: ignore[no-untyped-call]
    return f"as {key_name(user)}" if user else "no ACL user (Redis without ACLs, or AUTH by password only)"


def _key_patterns(client: Client) -> str | None:
    """The user's key patterns, when it may read its own ACL rules (ACL GETUSER); None otherwise."""
    user = _safe(lambda: client.execute_command("ACL", "WHOAMI"))  # type: ignore[no-untyped-call]
    if not user:
        return None
    rules = _safe(lambda: client.execute_command("ACL", "GETUSER", user))  # type: ignore[no-untyped-call]
    if not isinstance(rules, (list, dict)):
        return None
    values = dict(zip(rules[::2], rules[1::2], strict=False)) if isinstance(rules, list) else rules
    keys = values.get(b"keys") or values.get("keys")
    return key_name(keys) if isinstance(keys, (bytes, str)) else None


def _safe(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except rex.RedisError:
        return None
