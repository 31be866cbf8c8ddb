"""How to reach one broker: resolved from flags, environment and profile, handed to its adapter.

Kept apart from :mod:`qctl.adapter` so that the config code depends on plain
data, not on the adapter interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qctl.deadletter import DeadLetterNaming
from qctl.urls import BrokerURL


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSFiles:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    @property
    def given(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """Everything an adapter needs to connect."""

    url: BrokerURL
    timeout: float = 10.0
    management_url: str | None = None
    tls: TLSFiles = field(default_factory=TLSFiles)
    dead_letter: DeadLetterNaming = field(default_factory=DeadLetterNaming)
    # Redis lists: the end consumers pop first ("right" for LPUSH+BRPOP, "left" for RPUSH+BLPOP).
    list_end: str = "right"
    include_internal: bool = False
    # The profile's own table for this backend (``[profiles.NAME.sqs]`` for the sqs adapter...).
    backend_settings: Mapping[str, Any] = field(default_factory=dict)
    # The profile's whole raw table (for settings that predate backend tables).
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Backend-specific command-line options, checked by the core before the adapter sees them
    # (``{"group": "qctl-redrive", "via_exchange": False}``).
    flags: Mapping[str, Any] = field(default_factory=dict)

    def setting(self, name: str, default: Any = None) -> Any:
        """A backend setting: the URL's query first, then the profile's backend table, then its top level."""
        if name in self.url.query:
            return self.url.query[name]
        if name in self.backend_settings:
            return self.backend_settings[name]
        return self.settings.get(name, default)
