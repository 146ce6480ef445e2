"""The Connect protocol (v1, JSON codec, no compression) as envd speaks it to the SDK.

Unary: POST with `application/json`, the message as the body; errors are non-200 with
`{"code": "<connect code>", "message": ...}`. Streams: `application/connect+json`,
bodies made of envelopes (1 flag byte, 4-byte big-endian length, JSON); a server
stream ends with a flag-0x02 envelope holding `{}` or `{"error": {...}}`, always under
HTTP 200, as connect-go does.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sandboxd.agent import AgentError
from sandboxd.envd.bodies import BodyTooLarge, discard, read_at_most

Message = dict[str, Any]
UNARY_TYPE = "application/json"
STREAM_TYPE = "application/connect+json"
END_STREAM_FLAG = 0x02
_COMPRESSED_FLAG = 0x01
# The largest request message (a unary body or one stream envelope) sandboxd reads. envd's
# messages are small (a command, a path) except SendInput's data; 2 MiB of JSON keeps that
# data, base64 again on the agent's line, well under the agent channel's line limit, and is
# all that one request can make sandboxd hold.
MAX_MESSAGE_BYTES = 2 << 20

# Connect's code -> HTTP status table (connectrpc.com/docs/protocol#error-codes).
HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

# What an agent error becomes on the wire. ENOSPC is `internal` as in envd: the SDK
# reads `resource_exhausted` as a rate limit ("please try again later").
_FROM_AGENT = {"resource_exhausted": "internal"}


class ConnectError(Exception):
    """An RPC failed: `code` is a Connect code name such as "not_found"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code if code in HTTP_STATUS else "unknown"
        self.message = message

    @classmethod
    def from_agent(cls, error: AgentError) -> ConnectError:
        return cls(_FROM_AGENT.get(error.code, error.code), error.message)

    def to_json(self) -> Message:
        return {"code": self.code, "message": self.message}


def error_response(error: ConnectError) -> Response:
    """A unary error (also used before a stream has started)."""
    return JSONResponse(error.to_json(), status_code=HTTP_STATUS[error.code])


def unary_response(message: Message) -> Response:
    return JSONResponse(message, media_type=UNARY_TYPE)


async def unary_request(request: Request) -> Message:
    """The request message of a unary call; ConnectError when it is not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != UNARY_TYPE:
        raise ConnectError("invalid_argument", f"unsupported content-type {content_type!r}")
    try:
        return _as_message(await read_at_most(request.stream(), MAX_MESSAGE_BYTES))
    except BodyTooLarge as exc:
        raise ConnectError("invalid_argument", str(exc)) from None


def _as_message(data: bytes) -> Message:
    try:
        message = json.loads(data or b"{}")
    except ValueError as exc:
        raise ConnectError("invalid_argument", f"the request is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ConnectError("invalid_argument", "the request must be a JSON object")
    return message


def envelope(message: Mapping[str, Any], flags: int = 0) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">BI", flags, len(data)) + data


def end_of_stream(error: ConnectError | None = None) -> bytes:
    return envelope({"error": error.to_json()} if error else {}, END_STREAM_FLAG)


async def stream_messages(request: Request) -> AsyncIterator[Message]:
    """The messages of a streamed request body, as they arrive."""
    buffer = bytearray()
    chunks = request.stream()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 5:
            flags, length = struct.unpack(">BI", buffer[:5])
            if flags & _COMPRESSED_FLAG or length > MAX_MESSAGE_BYTES:
                del buffer[:]
                await discard(chunks)  # so the client, still sending, reads the error
                raise ConnectError(
                    "invalid_argument",
                    f"compressed envelope, or one over the limit of {MAX_MESSAGE_BYTES} bytes",
                )
            if len(buffer) < 5 + length:
                break
            data = bytes(buffer[5 : 5 + length])
            del buffer[: 5 + length]
            if flags & END_STREAM_FLAG:
                return
            yield _as_message(data)
    if buffer:
        raise ConnectError("invalid_argument", "the request ends inside an envelope")


async def first_stream_message(request: Request) -> Message:
    """The single request message of a server-streaming call."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != STREAM_TYPE:
        raise ConnectError("invalid_argument", f"unsupported content-type {content_type!r}")
    async for message in stream_messages(request):
        return message
    raise ConnectError("invalid_argument", "the request has no message")


def stream_response(
    messages: AsyncIterator[Message],
    *,
    keepalive_s: float | None = None,
    keepalive: Message | None = None,
    deadline_s: float | None = None,
) -> StreamingResponse:
    """Envelopes for `messages`, then the end of stream (with the error that ended it,
    if any). `keepalive` is sent after `keepalive_s` without a message; after
    `deadline_s` the stream ends with deadline_exceeded."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for message in _paced(messages, keepalive_s, keepalive, deadline_s):
                yield envelope(message)
        except ConnectError as exc:
            yield end_of_stream(exc)
        except AgentError as exc:
            yield end_of_stream(ConnectError.from_agent(exc))
        else:
            yield end_of_stream()

    return StreamingResponse(body(), media_type=STREAM_TYPE)


def error_stream(error: ConnectError) -> StreamingResponse:
    """A server stream that failed before its first message."""

    async def body() -> AsyncIterator[bytes]:
        yield end_of_stream(error)

    return StreamingResponse(body(), media_type=STREAM_TYPE)


async def _paced(
    source: AsyncIterator[Message],
    keepalive_s: float | None,
    keepalive: Message | None,
    deadline_s: float | None,
) -> AsyncIterator[Message]:
    """`source`, with `keepalive` whenever it is quiet for `keepalive_s`, until
    `deadline_s`. It waits with timeouts rather than a cancel scope, which must not span
    a `yield`; and the pending read is never cancelled by a keepalive, so no message is
    lost to one."""
    loop = asyncio.get_running_loop()
    deadline = None if deadline_s is None else loop.time() + deadline_s
    interval = keepalive_s if keepalive is not None else None
    pending: asyncio.Future[Message] = asyncio.ensure_future(anext(source))
    try:
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            waits = [t for t in (interval, left) if t is not None]
            done, _ = await asyncio.wait({pending}, timeout=min(waits) if waits else None)
            if done:
                try:
                    message = pending.result()
                except StopAsyncIteration:
                    return
                yield message
                pending = asyncio.ensure_future(anext(source))
            elif deadline is not None and loop.time() >= deadline:
                raise ConnectError("deadline_exceeded", "the call's deadline passed")
            elif keepalive is not None:
                yield keepalive
    finally:
        pending.cancel()


def deadline_from(headers: Mapping[str, str]) -> float | None:
    """Connect-Timeout-Ms in seconds, or None."""
    value = headers.get("connect-timeout-ms", "")
    return int(value) / 1000 if value.isdigit() and int(value) > 0 else None


def keepalive_from(headers: Mapping[str, str]) -> float | None:
    """Keepalive-Ping-Interval (seconds), as the SDK sends it, or None."""
    value = headers.get("keepalive-ping-interval", "")
    return float(value) if value.isdigit() and int(value) > 0 else None
