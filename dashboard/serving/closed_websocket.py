"""Keep a closing session's harmless error out of the monitor's output.

When a tab closes or the monitor stops while a session's WebSocket is being torn down,
Streamlit's endpoint may close a socket that another of its tasks has already closed, and
Starlette answers the second close with `WebSocketDisconnected` ("Cannot call "send" once
a close message has been sent", Starlette issue #2766). The connection is over either way,
but uvicorn prints the traceback as an application error. `ClosedWebSocketGuard` drops
that exception, and only that one, once the socket has closed in either direction: the
same exception before a close is a real fault and still propagates.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnected


class ClosedWebSocketGuard:
    """ASGI middleware: a WebSocket's `WebSocketDisconnected` after its close is not an error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        closed = False

        async def receive_noting_close() -> Message:
            nonlocal closed
            message = await receive()
            closed = closed or message["type"] == "websocket.disconnect"
            return message

        async def send_noting_close(message: Message) -> None:
            nonlocal closed
            closed = closed or message["type"] == "websocket.close"
            await send(message)

        try:
            await self.app(scope, receive_noting_close, send_noting_close)
        except WebSocketDisconnected:
            if not closed:
                raise
