"""filesystem.Filesystem: envd's file RPCs, served by the agent.

Shapes from e2b/envd/filesystem/filesystem_pb.py. The SDK branches on two codes:
MakeDir's `already_exists` (make_dir returns False) and Stat's `not_found` (exists
returns False). Remove succeeds on a missing path, as envd's os.RemoveAll does.
Watching directories (WatchDir and the watcher RPCs) is in watch_service.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from sandboxd.agent import AgentClient, AgentError
from sandboxd.envd import connect, fields, watch_service
from sandboxd.envd.process_service import ServerStream, Unary
from sandboxd.envd.protojson import Message, entry_json

_COMPACT: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}  # as JSONResponse


async def stat(agent: AgentClient, message: Message) -> Message:
    return {"entry": entry_json(await agent.stat(fields.string(message, "path")))}


async def make_dir(agent: AgentClient, message: Message) -> Message:
    return {"entry": entry_json(await agent.make_dir(fields.string(message, "path")))}


async def move(agent: AgentClient, message: Message) -> Message:
    source = fields.string(message, "source")
    destination = fields.string(message, "destination")
    return {"entry": entry_json(await agent.move(source, destination))}


async def list_dir(agent: AgentClient, message: Message) -> Response:
    """The ListDir answer, encoded a page at a time as the agent walks: sandboxd holds the
    answer's bytes and one page of entries, never every entry as objects. Past the agent's
    limits (LIST_MAX_ENTRIES, LIST_MAX_BYTES in agent.py) it is invalid_argument."""
    depth = fields.integer(message, "depth") or 1  # 0 (unset) lists the directory itself
    body, separator = bytearray(b'{"entries":['), b""
    pages = agent.list_dir_pages(fields.string(message, "path"), depth)
    try:
        async for page in pages:
            for entry in page:
                body += separator + json.dumps(entry_json(entry), **_COMPACT).encode()
                separator = b","
    finally:
        await pages.aclose()
    body += b"]}"
    return Response(bytes(body), media_type=connect.UNARY_TYPE)


async def remove(agent: AgentClient, message: Message) -> Message:
    try:
        await agent.remove(fields.string(message, "path"))
    except AgentError as exc:
        if exc.code != "not_found":
            raise
    return {}


# Unary calls whose handler encodes its own answer (a big one, built as it arrives).
ENCODED: dict[str, Callable[[AgentClient, Message], Awaitable[Response]]] = {
    "ListDir": list_dir,
    "GetWatcherEvents": watch_service.get_watcher_events,
}

SERVER_STREAMS: dict[str, ServerStream] = {"WatchDir": watch_service.watch_dir}
KEEPALIVE = watch_service.KEEPALIVE  # WatchDirResponse's keepalive

UNARY: dict[str, Unary] = {
    "Stat": stat,
    "MakeDir": make_dir,
    "Move": move,
    "Remove": remove,
    "CreateWatcher": watch_service.create_watcher,
    "RemoveWatcher": watch_service.remove_watcher,
}
