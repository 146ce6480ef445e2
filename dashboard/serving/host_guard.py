"""The dashboard answers only to its own names: an ASGI middleware in front of Streamlit.

DNS rebinding: a page on `attacker.example` whose name the attacker re-points at 127.0.0.1
talks to the loopback dashboard as its own origin; the browser then sends
`Host: attacker.example`. So every request (pages, static files, health, the WebSocket)
whose Host is not one of the dashboard's names is refused with 403, and a WebSocket upgrade
whose Origin is not the dashboard's own (the scheme and name of its Host) is refused too:
another site's page, even one on a loopback port, cannot open a session.

The names: the loopback ones (localhost, 127.0.0.0/8, ::1), the address the dashboard is
configured to listen on, and the extra names an operator lists in Streamlit's own
`server.allowedHosts` option. Bound to every interface (0.0.0.0, ::), any IP literal is
accepted as well: a browser sends an IP literal as Host only for a page loaded from that
address, which rebinding cannot fake. The port is not checked: an SSH tunnel
(`ssh -L 9000:localhost:8501`) legitimately arrives with another port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
# The close code a WebSocket handshake is refused with before accept: uvicorn answers the
# upgrade with HTTP 403 and never switches protocols.
POLICY_VIOLATION = 1008
REFUSED_BODY = (
    b"403 Forbidden: this dashboard answers only to its own host names "
    b"(see SANDSCOPE_ADDRESS, or server.allowedHosts in .streamlit/config.toml).\n"
)
CROSS_ORIGIN_BODY = b"403 Forbidden: cross-origin request refused.\n"


@dataclass(frozen=True)
class AllowedHosts:
    """The host names (lowercase, IPv6 without brackets) the dashboard answers to."""

    names: frozenset[str]
    any_ip_literal: bool = False

    def allows(self, host_header: str | None) -> bool:
        """True when `host_header` ("name", "name:port", "[v6]:port") names the dashboard."""
        parsed = split_host_port(host_header)
        if parsed is None:
            return False
        name = parsed[0]
        if name in self.names or name in LOOPBACK_NAMES or "*" in self.names:
            return True
        # "*.example.com", as in Streamlit's server.allowedHosts: any name below it.
        if any(p.startswith("*.") and name.endswith(p[1:]) for p in self.names):
            return True
        ip = _ip(name)
        return ip is not None and (ip.is_loopback or self.any_ip_literal)


def allowed_hosts(address: str, extra_names: Iterable[str] = ()) -> AllowedHosts:
    """The names for a dashboard listening on `address`, plus `extra_names`."""
    configured = address.strip().lower()
    names = {_normalise(name) for name in extra_names if name.strip()}
    if configured in WILDCARD_ADDRESSES:
        return AllowedHosts(frozenset(names), any_ip_literal=True)
    names.add(_normalise(configured))
    return AllowedHosts(frozenset(names))


def split_host_port(host_header: str | None) -> tuple[str, int | None] | None:
    """`(name, port)` of a Host header value, the name lowercase without a trailing dot or
    IPv6 brackets; None when it is missing or malformed (a path, user info, a bad port)."""
    if not host_header or any(c in host_header for c in "/\\@?# \t"):
        return None
    try:
        parts = urlsplit(f"//{host_header}")
        name, port = parts.hostname, parts.port  # .port raises ValueError when not a port
    except ValueError:
        return None
    if not name:
        return None
    if ":" in name and not host_header.startswith("["):
        return None  # an IPv6 address must be bracketed in a Host header
    return _normalise(name), port


def same_origin(origin: str, host_header: str | None) -> bool:
    """True when `origin` ("http://name:port") is the origin of a page served under
    `host_header`: http(s), the same name and the same port (defaults filled in)."""
    try:
        parts = urlsplit(origin)
        origin_name, origin_port = parts.hostname, parts.port
    except ValueError:
        return False
    host = split_host_port(host_header)
    if parts.scheme not in ("http", "https") or not origin_name or host is None:
        return False
    default_port = 443 if parts.scheme == "https" else 80
    return (_normalise(origin_name), origin_port or default_port) == (
        host[0],
        host[1] or default_port,
    )


class HostGuard:
    """ASGI middleware: refuse requests for other host names and cross-origin WebSockets.

    Starlette's own TrustedHostMiddleware is not used: it answers 400, and it cuts the
    Host at the first colon, so `[::1]:8501` could never match.
    """

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        host = _header(scope, b"host")
        if not self.allowed.allows(host):
            await _refuse(scope, send, REFUSED_BODY)
            return
        origin = _header(scope, b"origin")
        # Browsers always send Origin on a WebSocket; a client without one is no web page.
        if scope["type"] == "websocket" and origin is not None and not same_origin(origin, host):
            await _refuse(scope, send, CROSS_ORIGIN_BODY)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, body: bytes) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    """The first `name` header of the request, decoded as latin-1 (HTTP's header charset)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _normalise(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None
