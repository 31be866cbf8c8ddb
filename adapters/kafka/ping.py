"""``qctl ping`` for Kafka: bootstrap and SASL, the cluster, listing, ACLs, round trip (librdkafka's admin client).

ACLs are read with DescribeAcls for the principal qctl logs in as; a cluster without an authorizer
answers SECURITY_DISABLED, which means every operation is allowed.  Where DescribeAcls itself is
refused, a metadata request (harmless) still proves listing.  Kafka does not tell its version over
the protocol in a way clients expose, so that line says so.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from qctl.adapters.kafka import rdkafka
from qctl.models import Check
from qctl.options import ConnectOptions
from qctl.urls import redact

NEEDED = {"Read": "peek, purge --backup, backup, redrive, move", "Write": "redrive, move, restore",
          "Delete": "purge", "Describe": "stats"}


def ping(options: ConnectOptions) -> list[Check]:
    ck = rdkafka.library()
    admin: Any = importlib.import_module("confluent_kafka.admin")

    where = redact(str(options.url))
    started = time.monotonic()
    try:
        client = admin.AdminClient(rdkafka.settings(options))
        metadata = client.list_topics(timeout=options.timeout)
    except ck.KafkaException as exc:
        error: Any = exc.args[0] if exc.args else exc
        text = redact(error.str() if hasattr(error, "str") else str(error))
        code = error.code() if hasattr(error, "code") else None
        if code in (ck.KafkaError._AUTHENTICATION, ck.KafkaError.SASL_AUTHENTICATION_FAILED):
            return [Check(check="connect", ok=True, detail=where), Check(check="authenticate", ok=False, detail=text)]
        return [Check(check="connect", ok=False, detail=f"{where}: {text}")]
    user = options.url.username
    checks = [Check(check="connect", ok=True, detail=f"{where} ({len(metadata.brokers)} broker(s))"),
              Check(check="authenticate", ok=True, detail=f"as User:{user}" if user else "no SASL (anonymous)"),
              Check(check="version", ok=None, detail="not told by the Kafka protocol"),
              Check(check="list", ok=True, detail=f"{len(metadata.topics)} topic(s) visible")]
    checks += _acls(client, options, user)
    rtt = time.monotonic()
    client.list_topics(timeout=options.timeout)
    took, total = (time.monotonic() - rtt) * 1000, (rtt - started) * 1000
    checks.append(Check(check="round trip", ok=True, detail=f"{took:.1f} ms (all checks {total:.0f} ms)"))
    return checks


def _acls(client: Any, options: ConnectOptions, user: str | None) -> list[Check]:
    ck = rdkafka.library()
    admin: Any = importlib.import_module("confluent_kafka.admin")

    def describe(principal: str | None) -> list[Any]:
        binding = admin.AclBindingFilter(admin.ResourceType.ANY, None, admin.ResourcePatternType.ANY, principal,
                                         None, admin.AclOperation.ANY, admin.AclPermissionType.ANY)
        result: list[Any] = client.describe_acls(binding, request_timeout=options.timeout).result()
        return result

    try:
        acls = describe(f"User:{user}" if user else None)
        if not acls and not describe(None):
            return [Check(check="permissions", ok=True, detail="no ACLs on the cluster (no authorizer, or one that "
                                                              "allows what no ACL names): listing works, so does the "
                                                              "rest")]
    except ck.KafkaException as exc:
        error: Any = exc.args[0] if exc.args else exc
        if error.code() == ck.KafkaError.SECURITY_DISABLED:
            return [Check(check="permissions", ok=True, detail="no authorizer on the cluster: every operation is "
                                                              "allowed")]
        return [Check(check="permissions", ok=None, detail=f"DescribeAcls refused ({redact(error.str())}); listing "
                                                           f"works, the rest is known only by trying")]
    allowed = {acl.operation.name.capitalize() for acl in acls if acl.permission_type.name == "ALLOW"}
    if "All" in allowed:
        return [Check(check="permissions", ok=True, detail="ALL granted")]
    return [Check(check=op.lower(), ok=op in allowed, detail="granted" if op in allowed else "no ACL grants it",
                  needed_by=needed) for op, needed in NEEDED.items()]
