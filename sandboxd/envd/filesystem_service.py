"""filesystem.Filesystem: envd's file RPCs, served by the agent.

Shapes from e2b/envd/filesystem/filesystem_pb.py. The SDK branches on two codes:
MakeDir's `already_exists` (make_dir returns False) and Stat's `not_found` (exists
returns False). Remove succeeds on a missing path, as envd's os.RemoveAll does.
Watching directories is not served: WatchDir and the watcher RPCs answer
`unimplemented`.
"""

from __future__ import annotations

from sandboxd.agent import AgentClient, AgentError
from sandboxd.envd import fields
from sandboxd.envd.process_service import Unary
from sandboxd.envd.protojson import Message, entry_json


async def stat(agent: AgentClient, message: Message) -> Message:
    return {"entry": entry_json(await agent.stat(fields.string(message, "path")))}


async def make_dir(agent: AgentClient, message: Message) -> Message:
    return {"entry": entry_json(await agent.make_dir(fields.string(message, "path")))}


async def move(agent: AgentClient, message: Message) -> Message:
    source = fields.string(message, "source")
    destination = fields.string(message, "destination")
    return {"entry": entry_json(await agent.move(source, destination))}


async def list_dir(agent: AgentClient, message: Message) -> Message:
    depth = fields.integer(message, "depth") or 1  # 0 (unset) lists the directory itself
    entries = await agent.list_dir(fields.string(message, "path"), depth)
    return {"entries": [entry_json(entry) for entry in entries]}


async def remove(agent: AgentClient, message: Message) -> Message:
    try:
        await agent.remove(fields.string(message, "path"))
    except AgentError as exc:
        if exc.code != "not_found":
            raise
    return {}


UNARY: dict[str, Unary] = {
    "Stat": stat,
    "MakeDir": make_dir,
    "Move": move,
    "ListDir": list_dir,
    "Remove": remove,
}
