"""Dead-letter queue names by convention, shared by every backend.

``candidates("orders")`` lists the names a DLQ of ``orders`` may have;
``origin("orders.dlq")`` strips the convention back off.  Profiles may add
their own ``suffixes``/``prefixes`` under ``[profiles.NAME.dead_letter]``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Redis (`:dlq`, `:dead`, `dlq:`), Spring Kafka (`.DLT`), and the common spellings.
DEFAULT_SUFFIXES: tuple[str, ...] = (
    ":dlq", ".dlq", "-dlq", "_dlq", ".DLQ", "-DLQ",
    ".DLT", "-dlt", ".dlt",
    ":dead", ".dead", "-dead",
    ".dead-letter", "-dead-letter",
)
DEFAULT_PREFIXES: tuple[str, ...] = ("dlq:", "dlq.", "dlq-", "dead:")


@dataclass(frozen=True, slots=True)
class DeadLetterNaming:
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES

    def extended(self, suffixes: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> DeadLetterNaming:
        """Configured names first (they win), then the defaults."""
        return DeadLetterNaming(_unique(suffixes + self.suffixes), _unique(prefixes + self.prefixes))

    def candidates(self, queue: str) -> list[str]:
        """Names a dead-letter queue of ``queue`` could have, most likely first."""
        return [queue + suffix for suffix in self.suffixes] + [prefix + queue for prefix in self.prefixes]

    def origin(self, dlq: str) -> str | None:
        """The queue ``dlq`` dead-letters for, by name alone; None when no convention matches."""
        for suffix in sorted(self.suffixes, key=len, reverse=True):
            if dlq.endswith(suffix) and len(dlq) > len(suffix):
                return dlq[: -len(suffix)]
        for prefix in sorted(self.prefixes, key=len, reverse=True):
            if dlq.startswith(prefix) and len(dlq) > len(prefix):
                return dlq[len(prefix):]
        return None

    def is_dead_letter_name(self, name: str) -> bool:
        return self.origin(name) is not None


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
