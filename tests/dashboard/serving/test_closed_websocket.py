"""A second close of a closed WebSocket (Streamlit's teardown race) is not an error; the
same exception before any close still is. Driven with Starlette's own WebSocket, as the
ASGI server calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnected

from dashboard.serving.closed_websocket import ClosedWebSocketGuard

Endpoint = Callable[[WebSocket], Awaitable[None]]


def as_asgi(endpoint: Endpoint) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(WebSocket(scope, receive, send))

    return app


def serve(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> list[Message]:
    """Run `app` for one WebSocket connection; the messages it sent."""
    sent: list[Message] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1001}

    async def send(message: Message) -> None:
        sent.append(message)

    async def connection() -> None:
        scope: Scope = {"type": "websocket", "path": "/_stcore/stream", "headers": []}
        await app(scope, receive, send)

    asyncio.run(connection())
    return sent


async def close_twice(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()  # the session's shutdown, from one task
    await websocket.close()  # the endpoint's own cleanup, from another


async def receive_before_accept(websocket: WebSocket) -> None:
    await websocket.receive_bytes()  # a real fault: nothing has closed


def test_a_second_close_raises_without_the_guard() -> None:
    with pytest.raises(WebSocketDisconnected):
        serve(as_asgi(close_twice))


def test_a_second_close_is_quiet_behind_the_guard() -> None:
    sent = serve(ClosedWebSocketGuard(as_asgi(close_twice)))
    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.close"]


def test_the_same_error_before_any_close_still_propagates() -> None:
    with pytest.raises(WebSocketDisconnected):
        serve(ClosedWebSocketGuard(as_asgi(receive_before_accept)))


def test_http_passes_through_untouched() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    async def request() -> None:
        await ClosedWebSocketGuard(app)({"type": "http"}, receive_nothing, send_nothing)

    asyncio.run(request())
    assert calls == ["http"]


async def receive_nothing() -> Message:
    return {"type": "http.disconnect"}


async def send_nothing(message: Message) -> None:
    return None
