"""filesystem.Filesystem's directory watching, served from inotify inside the box.

Two ways in, one watcher kind in the agent (see docs/E2B-API.md, "Watching directories"):
- WatchDir, the async SDK's server stream: a start event, then each event as it comes,
  until the call's deadline or the client goes (the watcher is then removed);
- CreateWatcher / GetWatcherEvents / RemoveWatcher, the sync SDK's polling: events wait in
  the agent (in the box's memory, bounded) until taken.
A watcher whose queue overflowed ends with `internal` "watcher error: ..." once the events
queued before have been delivered, as envd's watcher does when fsnotify reports an
overflow. sandboxd holds one page of a watcher's events at a time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.responses import Response

from sandboxd.agent import AgentClient
from sandboxd.agent.agent import WATCH_QUEUE_MAX_EVENTS
from sandboxd.agent.watch_events import WatchEvent, checked_watcher_id
from sandboxd.envd import connect, fields
from sandboxd.envd.protojson import Message, entry_json

# How long one take waits in the agent for an event before sandboxd asks again. It only
# bounds how long a stream's end can go unnoticed by the agent; events come at once.
STREAM_WAIT_S = 15.0
KEEPALIVE: Message = {"keepalive": {}}


def event_json(event: WatchEvent) -> Message:
    """filesystem.FilesystemEvent: name, type (EventType by name), entry if any."""
    message: Message = {"name": event.name, "type": f"EVENT_TYPE_{event.type.upper()}"}
    if event.entry is not None:
        message["entry"] = entry_json(event.entry)
    return message


async def _started(agent: AgentClient, message: Message) -> int:
    """The id of a new watcher for the request's path, recursive and include_entry options.
    allowNetworkMounts is accepted and has nothing to allow: a box has no network mounts."""
    return await agent.watch_start(
        fields.string(message, "path"),
        recursive=message.get("recursive") is True,
        include_entry=message.get("includeEntry") is True,
    )


async def watch_dir(
    agent: AgentClient, message: Message, deadline_s: float | None
) -> AsyncIterator[Message]:
    """WatchDir: the watcher is made before the stream answers (so a missing directory is
    the stream's error), and removed when the stream ends, however it ends."""
    watcher = await _started(agent, message)
    return _events(agent, watcher)


async def _events(agent: AgentClient, watcher: int) -> AsyncIterator[Message]:
    try:
        yield {"start": {}}
        while True:
            page = await agent.watch_take(watcher, wait_s=STREAM_WAIT_S)
            for event in page.events:
                yield {"filesystem": event_json(event)}
    finally:
        agent.watch_stop_soon(watcher)


async def create_watcher(agent: AgentClient, message: Message) -> Message:
    return {"watcherId": str(await _started(agent, message))}


async def get_watcher_events(agent: AgentClient, message: Message) -> Response:
    """The events waiting now, encoded page by page: sandboxd holds the answer's bytes and
    one page of events. Stops at WATCH_QUEUE_MAX_EVENTS, a full queue, so a box writing
    all the while cannot keep the call going; the rest comes with the next call."""
    watcher = checked_watcher_id(fields.string(message, "watcherId"))
    body, separator, taken = bytearray(b'{"events":['), b"", 0
    while taken < WATCH_QUEUE_MAX_EVENTS:
        page = await agent.watch_take(watcher)
        for event in page.events:
            body += separator + json.dumps(event_json(event), separators=(",", ":")).encode()
            separator = b","
        taken += len(page.events)
        if not page.more:
            break
    body += b"]}"
    return Response(bytes(body), media_type=connect.UNARY_TYPE)


async def remove_watcher(agent: AgentClient, message: Message) -> Message:
    await agent.watch_stop(checked_watcher_id(fields.string(message, "watcherId")))
    return {}
