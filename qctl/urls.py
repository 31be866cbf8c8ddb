"""Broker URLs: parse once, and never show a password.

Every URL that reaches output, an error or ``--debug`` goes through
:func:`redact`; passwords read from ``password_env``/``password_file`` are
registered with :func:`register_secret` so :func:`scrub` can remove them from
any text, including driver messages we do not control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from qctl.errors import UsageError

MASK = "***"
_SECRETS: set[str] = set()
# scheme://user:password@  ->  scheme://user:***@   (also catches URLs embedded in messages).  The
# password runs to the last "@" before whitespace or a nested "://", so one written with a raw "/",
# "?" or "@" (which a URL needs percent-encoded) is masked whole too.
_USERINFO = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<pw>(?:(?!://)\S)*)@", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BrokerURL:
    """A parsed broker URL. ``hosts`` keeps order; ``path`` is unquoted (vhost, db, socket)."""

    scheme: str
    hosts: tuple[tuple[str, int | None], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.hosts[0][0] if self.hosts else ""

    @property
    def port(self) -> int | None:
        return self.hosts[0][1] if self.hosts else None

    def with_password(self, password: str | None) -> BrokerURL:
        if password:
            register_secret(password)
        return replace(self, password=password)

    def render(self, *, masked: bool = True) -> str:
        """The URL as text; with ``masked`` (the default) the password is ``***``."""
        userinfo = ""
        if self.username is not None or self.password is not None:
            userinfo = quote(self.username or "", safe="")
            if self.password is not None:
                userinfo += ":" + (MASK if masked else quote(self.password, safe=""))
            userinfo += "@"
        hosts = ",".join(_host_text(host, port) for host, port in self.hosts)
        path = self.path
        if self.scheme in ("amqp", "amqps") and path:
            path = "/" + quote(path, safe="")
        elif path and not path.startswith("/"):
            path = "/" + path
        # A query value may be a URL with a password of its own (?management=http://user:pass@host).
        query = "&".join(f"{key}={quote(redact(value), safe='/:@*') if masked else quote(value, safe='/:')}"
                         for key, value in self.query.items())
        return f"{self.scheme}://{userinfo}{hosts}{path}" + (f"?{query}" if query else "")

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:  # the masked text: a query value may hold a password of its own
        return f"BrokerURL({self.render()!r})"


def _host_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def parse(url: str) -> BrokerURL:
    """Parse a broker URL; raise :class:`UsageError` (exit 2) when it is malformed."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", url.strip())
    if not match:
        raise UsageError(f"malformed URL {redact(url)!r}: expected SCHEME://HOST[:PORT]...",
                         hint="for example redis://localhost:6379/0")
    scheme = match.group(1).lower()
    rest = match.group(2)
    if scheme == "unix":
        try:
            split = urlsplit(url)
        except ValueError as exc:  # an unbalanced "[" or "]"
            raise UsageError(f"malformed URL {redact(url)!r}: {exc}") from None
        if not split.path:
            raise UsageError(f"malformed URL {redact(url)!r}: unix:// needs a socket path")
        return BrokerURL(scheme, (), path=unquote(split.path), query=_query(split.query))
    # The host part ends at the first "/" or "?" (redis://h?db=1&management=http://m:1 has no path).
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    path, _, query = tail.removeprefix("/").partition("?")
    if "@" not in netloc and ":" in netloc:
        _refuse_raw_userinfo(url, rest, netloc)
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) if user else None
        password = unquote(secret) if colon else None
        if password:
            register_secret(password)
    if not netloc and scheme == "sqs":  # sqs:// alone: AWS, the region from the profile or the AWS config
        return BrokerURL(scheme, (), username, password, unquote(path), _query(query))
    if not netloc:
        raise UsageError(f"malformed URL {redact(url)!r}: no host")
    hosts = tuple(_parse_host(part, url) for part in netloc.split(","))
    return BrokerURL(scheme, hosts, username, password, unquote(path), _query(query))


def _query(text: str) -> dict[str, str]:
    values = dict(parse_qsl(text))
    for value in values.values():  # ?management=http://user:pass@host: that password is a secret too
        for nested in _USERINFO.finditer(value):
            register_secret(nested.group("pw"))
            register_secret(unquote(nested.group("pw")))
    return values


def _refuse_raw_userinfo(url: str, rest: str, netloc: str) -> None:
    """``user:pa/ss@host``: a password with a raw "/" or "?" cuts the host part short.

    Parsed as it stands, its first piece would become a host or port and be echoed in the error
    ("bad port 'pa'"), so when the host part does not parse and an "@" follows, the URL is refused
    here without pieces, the whole would-be password registered as a secret first.
    """
    nested = rest.find("://")
    head = rest if nested < 0 else rest[:nested]
    at = head.rfind("@")
    user, colon, secret = head[:max(at, 0)].partition(":")
    if at < 0 or not colon or user != netloc.partition(":")[0]:
        return
    try:
        for part in netloc.split(","):
            _parse_host(part, url)
    except UsageError:
        register_secret(secret)
        register_secret(unquote(secret))
        raise UsageError(f"malformed URL {redact(url)!r}: the user:password part holds a raw '/' or '?'",
                         hint="percent-encode them in the password ('/' is %2F, '?' is %3F, '@' is %40)") from None


def _parse_host(text: str, url: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, bracket, after = text[1:].partition("]")
        if not bracket:
            raise UsageError(f"malformed URL {redact(url)!r}: unclosed '[' in the IPv6 address {text!r}",
                             hint="write IPv6 hosts as [::1]:6379")
        if after and not after.startswith(":"):
            raise UsageError(f"malformed URL {redact(url)!r}: unexpected {after!r} after the IPv6 address")
        port_text = after[1:]
    else:
        if "[" in text or "]" in text or text.count(":") > 1:
            raise UsageError(f"malformed URL {redact(url)!r}: bad host {text!r}",
                             hint="write IPv6 hosts in brackets: [::1]:6379")
        host, _, port_text = text.partition(":")
    if not host:
        raise UsageError(f"malformed URL {redact(url)!r}: empty host")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"malformed URL {redact(url)!r}: bad port {port_text!r}")
    return host, int(port_text)


def register_secret(secret: str) -> None:
    """Remember a password so :func:`scrub` removes it from any later text."""
    if secret and len(secret) >= 3:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """Mask the password of every URL in ``text`` and every registered secret."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return scrub(text)


def scrub(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, MASK)
    return text
