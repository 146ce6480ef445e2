"""Request bodies read with a bound on what is held, and the rest of a refused body discarded.

A request refused before its body is read is answered only after the body is discarded (read
and dropped, nothing kept): an HTTP/1.1 client such as httpx sends its whole body before it
reads the answer, and a server that closes early leaves it with a reset instead of the error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect


class BodyTooLarge(Exception):
    """The body holds more than `max_bytes`; it has been discarded."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the request body is over the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


async def read_at_most(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The whole body, or BodyTooLarge (after discarding the rest) once past `max_bytes`."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            del body[:]
            await discard(chunks)
            raise BodyTooLarge(max_bytes)
    return bytes(body)


async def discard(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of `chunks` (a request's one `stream()`, possibly part read) and drop it;
    returns at its end or when the client has gone."""
    with contextlib.suppress(ClientDisconnect):
        async for _ in chunks:
            pass


async def coalesced(chunks: AsyncIterator[bytes], size_bytes: int) -> AsyncIterator[bytes]:
    """`chunks` regrouped into pieces of at least `size_bytes` (the last may be shorter), so a
    body arriving in small reads costs one agent request per `size_bytes`, not per read. At
    most `size_bytes` plus one chunk is held."""
    pending = bytearray()
    async for chunk in chunks:
        if not pending and len(chunk) >= size_bytes:
            yield chunk  # already big enough: no copy
            continue
        pending += chunk
        if len(pending) >= size_bytes:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)
