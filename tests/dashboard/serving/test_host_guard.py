"""The Host guard: which Host headers and WebSocket Origins reach the dashboard, checked on
the rules and through the middleware as an ASGI server calls it."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from dashboard.serving.host_guard import HostGuard, allowed_hosts, same_origin, split_host_port


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost:8501", ("localhost", 8501)),
        ("localhost.:8501", ("localhost", 8501)),
        ("127.0.0.1:8501", ("127.0.0.1", 8501)),
        ("[::1]:8501", ("::1", 8501)),
        ("[::1]", ("::1", None)),
        (None, None),
        ("", None),
        ("::1", None),  # unbracketed IPv6
        ("localhost:http", None),
        ("localhost:99999", None),
        ("user@localhost", None),
        ("localhost/x", None),
        ("localhost x", None),
    ],
)
def test_host_headers_are_split_strictly(
    header: str | None, expected: tuple[str, int | None] | None
) -> None:
    assert split_host_port(header) == expected


def test_loopback_names_and_the_configured_address_are_allowed() -> None:
    allowed = allowed_hosts("192.168.1.5")
    for host in ["localhost", "localhost:1", "127.0.0.1:8501", "127.0.0.2", "[::1]:8501"]:
        assert allowed.allows(host), host
    assert allowed.allows("192.168.1.5:8501")
    for host in ["attacker.example", "192.168.1.6", "localhost.attacker.example", "[::2]", ""]:
        assert not allowed.allows(host), host


def test_a_wildcard_bind_allows_ip_literals_but_no_other_name() -> None:
    allowed = allowed_hosts("0.0.0.0")
    assert allowed.allows("192.168.1.6:8501")
    assert allowed.allows("[fe80::1]:8501")
    assert not allowed.allows("attacker.example:8501")
    assert not allowed_hosts("127.0.0.1").allows("192.168.1.6")


def test_extra_names_follow_streamlits_allowed_hosts_patterns() -> None:
    allowed = allowed_hosts("127.0.0.1", ["Dash.Example.com", "*.corp.example"])
    assert allowed.allows("dash.example.com:443")
    assert allowed.allows("monitor.corp.example")
    assert not allowed.allows("corp.example.attacker.example")
    assert allowed_hosts("127.0.0.1", ["*"]).allows("anything.example")


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        ("http://127.0.0.1:8501", "127.0.0.1:8501", True),
        ("http://LOCALHOST:8501", "localhost:8501", True),
        ("http://localhost", "localhost:80", True),
        ("https://dash.example.com", "dash.example.com", True),
        ("http://[::1]:8501", "[::1]:8501", True),
        ("http://localhost:3000", "localhost:8501", False),
        ("http://127.0.0.1:8501", "localhost:8501", False),
        ("https://127.0.0.1:8501", "127.0.0.1:8501", True),
        ("null", "127.0.0.1:8501", False),
        ("file://", "127.0.0.1:8501", False),
        ("http://127.0.0.1:bad", "127.0.0.1:8501", False),
    ],
)
def test_same_origin_compares_scheme_name_and_port(origin: str, host: str, expected: bool) -> None:
    assert same_origin(origin, host) is expected


async def _inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    """What the guard protects: answers 200 to HTTP and accepts every WebSocket."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def call(kind: str, headers: dict[str, str]) -> list[Message]:
    """The messages the guard (over `_inner_app`) sends for one request of `kind`."""
    guard = HostGuard(_inner_app, allowed_hosts("127.0.0.1"))
    scope: Scope = {
        "type": kind,
        "path": "/_stcore/stream" if kind == "websocket" else "/",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect" if kind == "websocket" else "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent


OWN = {"Host": "127.0.0.1:8501"}


def test_the_middleware_refuses_foreign_hosts_with_403() -> None:
    assert call("http", OWN)[0]["status"] == 200
    for host in ("attacker.example:8501", "attacker.example"):
        start, body = call("http", {"Host": host})
        assert start["status"] == 403
        assert b"own host names" in body["body"]
    assert call("http", {})[0]["status"] == 403  # no Host at all (HTTP/1.0)


def test_the_middleware_refuses_foreign_and_cross_origin_websockets() -> None:
    assert call("websocket", OWN) == [{"type": "websocket.accept"}]
    own_origin = {**OWN, "Origin": "http://127.0.0.1:8501"}
    assert call("websocket", own_origin) == [{"type": "websocket.accept"}]
    refused = {"type": "websocket.close", "code": 1008}
    assert call("websocket", {"Host": "attacker.example:8501"}) == [refused]
    assert call("websocket", {**OWN, "Origin": "http://localhost:3000"}) == [refused]
    assert call("websocket", {**OWN, "Origin": "http://attacker.example:8501"}) == [refused]


def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def never() -> Message:
        raise AssertionError

    async def drop(message: Message) -> None:
        raise AssertionError

    asyncio.run(HostGuard(inner, allowed_hosts("127.0.0.1"))({"type": "lifespan"}, never, drop))
    assert seen == ["lifespan"]
