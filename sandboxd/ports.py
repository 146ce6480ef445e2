"""`sandbox.get_host(port)`: from `<port>-<id>.<domain>` on loopback to a server in the box.

E2B serves `https://<port>-<id>.<domain>` through its edge proxy. sandboxd serves the same
names on a listener of its own (SANDBOXD_PORTS_PORT): the SDK builds `<port>-<id>.<E2B_DOMAIN>`,
so a user sets `E2B_DOMAIN=sandbox.localhost:<that port>` (browsers and curl resolve every
`*.localhost` name to 127.0.0.1; see docs/ARCHITECTURE.md, "Ports").

The proxy reads only the first request's head: its Host picks the box and port, and for a
secured box its `e2b-traffic-access-token` (or envd's `X-Access-Token`) must be the box's
token. It then connects to 127.0.0.1:<port> inside the box's network namespace (a thread in
that namespace makes the socket: netns.py) and relays bytes both ways, so keep-alive,
streaming and WebSocket upgrades pass unchanged; a connection stays with its first box.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandboxd.isolation.netns import connect_inside

if TYPE_CHECKING:
    from sandboxd.manager import SandboxManager

log = logging.getLogger(__name__)

# A request head is a few hundred bytes; browsers send up to ~8 KiB of cookies.
MAX_HEAD_BYTES = 16 * 1024
# A client that sends no complete head in this long holds a connection for nothing.
HEAD_TIMEOUT_S = 10.0
# Connecting to 127.0.0.1 inside the box either works at once or is refused.
CONNECT_TIMEOUT_S = 5.0
RELAY_CHUNK_BYTES = 64 * 1024
# Client connections open at once, over every box: each holds two sockets and two buffers
# of RELAY_CHUNK_BYTES; a browser opens ~6 per host. Past it, 503 at once.
MAX_OPEN_CONNECTIONS = 256
TOKEN_HEADERS = (b"e2b-traffic-access-token", b"x-access-token")
_HOST = re.compile(rb"^(\d{1,5})-([A-Za-z0-9]{1,64})\.")


@dataclass(frozen=True)
class PortTarget:
    """A running box as the proxy sees it."""

    netns_fd: int | None  # None: the box has no namespace of its own (reduced isolation)
    access_token: str | None
    secured: bool


PortResolver = Callable[[str], PortTarget | None]


@dataclass(frozen=True)
class RequestHead:
    """The first request's head: where it goes and the tokens it carries."""

    raw: bytes
    port: int
    sandbox_id: str
    tokens: tuple[bytes, ...]


def parse_head(raw: bytes) -> RequestHead | None:
    """The box and port named by the Host of `raw` (a head ending in CRLF CRLF), with every
    token header's value; None when the Host names no `<port>-<id>.` or a port out of range."""
    host = b""
    tokens = []
    for line in raw.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"host":
            host = value.strip()
        elif name in TOKEN_HEADERS:
            tokens.append(value.strip())
    match = _HOST.match(host)
    if match is None or not 1 <= int(match[1]) <= 65535:
        return None
    return RequestHead(raw, int(match[1]), match[2].decode(), tuple(tokens))


def refusal(head: RequestHead, target: PortTarget | None) -> tuple[int, str] | None:
    """(status, reason) when the request may not reach the box, else None. A secured box
    without a token lets nobody in (fails closed)."""
    if target is None:
        return 502, f"The sandbox {head.sandbox_id} was not found"
    if target.netns_fd is None:
        return 502, "ports are served only for boxes of the full isolation level"
    if not target.secured:
        return None
    token = (target.access_token or "").encode()
    if token and any(hmac.compare_digest(given, token) for given in head.tokens):
        return None
    return 401, "invalid or missing traffic access token"


def _answer(status: int, reason: str) -> bytes:
    body = reason.encode()
    phrases = {400: "Bad Request", 401: "Unauthorized", 502: "Bad Gateway", 503: "Unavailable"}
    phrase = phrases.get(status, "Error")
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, resolve: PortResolver
) -> None:
    """One client connection, from its first head to the end of the relay."""
    try:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
            writer.write(_answer(400, "no request head within the limits"))
            return
        head = parse_head(raw)
        if head is None:
            writer.write(_answer(400, "the Host must be <port>-<sandbox id>.<domain>"))
            return
        target = resolve(head.sandbox_id)
        refused = refusal(head, target)
        if refused is not None or target is None:  # the second: for the type checker
            writer.write(_answer(*(refused or (502, "not found"))))
            return
        await _relay_to_box(head, target, reader, writer)
    finally:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def _relay_to_box(
    head: RequestHead,
    target: PortTarget,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    assert target.netns_fd is not None  # refusal() said so
    # A copy taken before the first await: the box may be destroyed meanwhile, and its fd
    # number given to the next box's namespace, which this request has no token for.
    netns_fd = os.dup(target.netns_fd)
    loop = asyncio.get_running_loop()
    try:
        sock = await loop.run_in_executor(
            None, connect_inside, netns_fd, head.port, CONNECT_TIMEOUT_S
        )
    except OSError:
        text = f"nothing listens on port {head.port} in sandbox {head.sandbox_id}"
        writer.write(_answer(502, text))
        return
    finally:
        os.close(netns_fd)
    sock.setblocking(False)
    box_reader, box_writer = await asyncio.open_connection(sock=sock, limit=RELAY_CHUNK_BYTES)
    box_writer.write(head.raw)
    try:
        await asyncio.gather(_pipe(reader, box_writer), _pipe(box_reader, writer))
    finally:
        box_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until `source` ends, then half-close `sink`; a reset ends it quietly."""
    try:
        while chunk := await source.read(RELAY_CHUNK_BYTES):
            sink.write(chunk)
            await sink.drain()  # backpressure: a slow side slows the other, no buffer grows
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()


def port_resolver(manager: SandboxManager) -> PortResolver:
    """The running sandbox with that ID as the proxy sees it, or None (paused ones too: a
    frozen box would hold the connection without a word)."""

    def resolve(sandbox_id: str) -> PortTarget | None:
        live = manager.live.get(sandbox_id)
        if live is None or live.record.state != "running" or live.agent.closed.done():
            return None
        netns_fd = getattr(live.box, "netns_fd", None)  # full boxes only (FullBox)
        return PortTarget(netns_fd, live.record.access_token, live.record.secure)

    return resolve


async def start_port_proxy(listener: socket.socket, resolve: PortResolver) -> asyncio.Server:
    """Serve the proxy on an open, listening socket; the caller closes the server."""
    open_connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        if open_connections >= MAX_OPEN_CONNECTIONS:
            writer.write(_answer(503, "too many connections to sandbox ports; try again"))
            writer.close()
            return
        open_connections += 1
        try:
            await serve_connection(reader, writer, resolve)
        except Exception:  # a connection boundary: one client's failure is only logged
            log.exception("port proxy connection failed")
        finally:
            open_connections -= 1

    return await asyncio.start_server(handle, sock=listener, limit=MAX_HEAD_BYTES)
