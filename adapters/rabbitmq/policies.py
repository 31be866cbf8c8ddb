"""Which policy and operator policy apply to a queue, and what they make effective.

Mirrors RabbitMQ 3.10 (``rabbit_policy``, ``rabbit_policies``, the queue types'
``capabilities/0``):

* A policy applies to a queue when its vhost is the queue's, its ``apply-to``
  is ``queues`` or ``all`` (or, from 3.12, ``classic_queues`` /
  ``quorum_queues`` / ``streams`` naming the queue's type), its ``pattern``
  regex matches *somewhere* in the name (``re:run``, not anchored), and every
  key of its definition is supported by the queue's type -- a quorum queue
  skips a policy that sets ``ha-mode``, a classic one a policy that sets
  ``delivery-limit``.  The highest ``priority`` wins; nothing is merged between
  policies.  Operator policies are chosen the same way, separately.
* The effective definition is the policy's definition merged with the operator
  policy's: where both set a key, numeric limits take the smaller value,
  booleans the operator's (``merge_policy_value``).
* Against the queue's own arguments: ``x-dead-letter-exchange`` and
  ``x-dead-letter-routing-key`` win over the policy (``res_arg`` /
  ``queueArgHasPrecedence``); ``x-delivery-limit`` and the other numeric limits
  take the smaller of argument and policy (``res_min``, ``fun min/2``).

Patterns are PCRE on the broker and Python ``re`` here; for the usual patterns
(``^orders\\.``, ``.*``, alternations, classes) they agree.  A pattern Python
cannot compile matches *unknown* (``None``), and callers that need safety treat
unknown as a match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# rabbit_{classic,quorum,stream}_queue:capabilities() -> unsupported_policies, RabbitMQ 3.10.
UNSUPPORTED: Mapping[str, frozenset[str]] = {
    "classic": frozenset({"max-age", "stream-max-segment-size-bytes", "queue-leader-locator",
                          "initial-cluster-size", "delivery-limit", "dead-letter-strategy"}),
    "quorum": frozenset({"max-priority", "queue-mode", "single-active-consumer", "ha-mode", "ha-params",
                         "ha-sync-mode", "ha-promote-on-shutdown", "ha-promote-on-failure",
                         "queue-master-locator", "max-age", "stream-max-segment-size-bytes",
                         "initial-cluster-size"}),
    "stream": frozenset({"expires", "message-ttl", "dead-letter-exchange", "dead-letter-routing-key",
                         "max-length", "max-in-memory-length", "max-in-memory-bytes", "max-priority",
                         "overflow", "queue-mode", "single-active-consumer", "delivery-limit", "ha-mode",
                         "ha-params", "ha-sync-mode", "ha-promote-on-shutdown", "ha-promote-on-failure",
                         "queue-master-locator", "dead-letter-strategy"}),
}
APPLY_TO_TYPE = {"classic_queues": "classic", "quorum_queues": "quorum", "streams": "stream"}
# rabbit_policies:merge_policy_value/3: where policy and operator policy both set one of these, the smaller wins.
MIN_MERGED = frozenset({"message-ttl", "max-length", "max-length-bytes", "max-in-memory-length",
                        "max-in-memory-bytes", "expires", "delivery-limit"})
ARGUMENT_WINS = frozenset({"dead-letter-exchange", "dead-letter-routing-key", "dead-letter-strategy"})


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    pattern: re.Pattern[str] | None  # None: not a Python regex (matches "unknown")
    apply_to: str
    priority: float
    definition: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Policy:
        try:
            pattern: re.Pattern[str] | None = re.compile(str(row.get("pattern", "")))
        except re.error:
            pattern = None
        definition = row.get("definition")
        priority = row.get("priority")
        return cls(name=str(row.get("name", "")), pattern=pattern, apply_to=str(row.get("apply-to") or "all"),
                   priority=priority if isinstance(priority, (int, float)) else 0,
                   definition=definition if isinstance(definition, Mapping) else {})

    def applies(self, queue: str, queue_type: str | None) -> bool | None:
        """True / False, or None when it cannot be told (pattern or queue type unknown)."""
        if self.apply_to in APPLY_TO_TYPE:
            if queue_type is None:
                return None
            if APPLY_TO_TYPE[self.apply_to] != queue_type:
                return False
        elif self.apply_to not in ("queues", "all"):
            return False  # "exchanges"
        unsupported = UNSUPPORTED.get(queue_type or "")
        if unsupported is not None and any(key in unsupported for key in self.definition):
            return False
        if self.pattern is None:
            return None
        if self.pattern.search(queue) is None:
            return False
        if queue_type is None and any(key in kinds for kinds in UNSUPPORTED.values() for key in self.definition):
            return None  # whether the type supports every key decides it
        return True


class PolicyBook:
    """A vhost's policies and operator policies (``/api/policies/<vhost>``, ``/api/operator-policies/<vhost>``)."""

    def __init__(self, policies: Iterable[Mapping[str, Any]], operator_policies: Iterable[Mapping[str, Any]]) -> None:
        # Highest priority first; among equals the API's order (RabbitMQ leaves ties unspecified).
        self.policies = sorted((Policy.from_row(row) for row in policies), key=lambda p: -p.priority)
        self.operator_policies = sorted((Policy.from_row(row) for row in operator_policies), key=lambda p: -p.priority)
        self._by_name = {policy.name: policy for policy in self.policies}

    @staticmethod
    def _winner(candidates: list[Policy], queue: str, queue_type: str | None) -> Policy | None:
        for policy in candidates:
            if policy.applies(queue, queue_type):
                return policy
        return None

    def policy_for(self, queue: str, queue_type: str | None, name: str | None = None) -> Policy | None:
        """The queue's policy: the one the broker names if given (and known), else the one qctl matches."""
        if name and name in self._by_name:
            return self._by_name[name]
        return self._winner(self.policies, queue, queue_type)

    def operator_policy_for(self, queue: str, queue_type: str | None) -> Policy | None:
        return self._winner(self.operator_policies, queue, queue_type)

    def effective_definition(self, queue: str, queue_type: str | None, *,
                             policy_name: str | None = None, named_only: bool = False) -> dict[str, Any]:
        """Policy merged with operator policy, as ``effective_policy_definition`` shows it.

        ``named_only``: the broker said which policy applies (``policy_name``, or none when empty), so
        qctl does not match user policies itself; operator policies are always matched here.
        """
        if named_only:
            policy = self._by_name.get(policy_name) if policy_name else None
        else:
            policy = self.policy_for(queue, queue_type, policy_name)
        return merge(policy.definition if policy else {},
                     (op.definition if (op := self.operator_policy_for(queue, queue_type)) else {}))

    def possible_values(self, key: str, queue: str, queue_type: str | None) -> list[Any]:
        """Every value of ``key`` a policy or operator policy might give this queue (for safety checks).

        Counts a policy whose match is unknown (pattern Python cannot read, type unknown) as matching.
        """
        values = []
        for candidates in (self.policies, self.operator_policies):
            winner: float | None = None  # priority of the first certain match
            for policy in candidates:
                if winner is not None and policy.priority < winner:
                    break  # a lower priority cannot win (equal ones might: RabbitMQ leaves ties open)
                verdict = policy.applies(queue, queue_type)
                if verdict is False:
                    continue
                if key in policy.definition:
                    values.append(policy.definition[key])
                if verdict is True and winner is None:
                    winner = policy.priority
        return values


def merge(definition: Mapping[str, Any], operator: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(definition)
    for key, value in operator.items():
        if key not in merged:
            merged[key] = value
        elif key in MIN_MERGED and _number(merged[key]) and _number(value):
            merged[key] = min(merged[key], value)
        else:
            merged[key] = value
    return merged


def queue_setting(key: str, arguments: Mapping[str, Any], definition: Mapping[str, Any]) -> Any:
    """The value in force for policy key ``key`` (e.g. ``dead-letter-exchange``), argument ``x-KEY`` included."""
    argument = arguments.get("x-" + key)
    policy = definition.get(key)
    if argument is None:
        return policy
    if policy is None or key in ARGUMENT_WINS:
        return argument
    if _number(argument) and _number(policy):
        return min(argument, policy)
    return argument


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
