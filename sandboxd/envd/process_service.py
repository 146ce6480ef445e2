"""process.Process: envd's RPCs for commands and terminals, served by the agent.

Shapes from e2b/envd/process/process_pb.py; behaviour from envd's process service:
`stdin` absent means true; Connect-Timeout-Ms on Start kills the process when it
passes; Start and Connect streams open with a start event carrying the pid
(e2b/envd/utils.py extract_start_pid) and close after the end event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from sandboxd.agent import AgentClient, ProcessHandle
from sandboxd.envd import fields
from sandboxd.envd.connect import ConnectError
from sandboxd.envd.protojson import Message, process_event, process_info_json, start_event

Unary = Callable[[AgentClient, Message], Awaitable[Message]]
ServerStream = Callable[[AgentClient, Message, float | None], Awaitable[AsyncIterator[Message]]]
ClientStream = Callable[[AgentClient, AsyncIterator[Message]], Awaitable[Message]]


async def selected_pid(agent: AgentClient, message: Message) -> int:
    """The pid a ProcessSelector ({"pid": N} or {"tag": "..."}) names."""
    selector = fields.obj(message, "process")
    if "pid" in selector:
        return fields.integer(selector, "pid")
    tag = fields.string(selector, "tag")
    if not tag:
        raise ConnectError("invalid_argument", "the process selector needs a pid or a tag")
    for info in await agent.list_processes():
        if info.tag == tag:
            return info.pid
    raise ConnectError("not_found", f"process with tag {tag} not found")


async def following(handle: ProcessHandle) -> AsyncIterator[Message]:
    """A Start/Connect stream: the start event, the output, the end."""
    try:
        yield start_event(handle.pid)
        async for event in handle:
            yield process_event(event)
    finally:
        handle.close()


async def start(
    agent: AgentClient, message: Message, deadline_s: float | None
) -> AsyncIterator[Message]:
    config = fields.obj(message, "process")
    if not (cmd := fields.string(config, "cmd")):
        raise ConnectError("invalid_argument", "process.cmd is required")
    size = fields.obj(fields.obj(message, "pty"), "size") if "pty" in message else None
    handle = await agent.start_process(
        cmd,
        fields.strings(config, "args"),
        fields.string_map(config, "envs"),
        cwd=fields.string(config, "cwd") or None,
        stdin=message.get("stdin") is not False,  # unset means true, as in envd
        tag=fields.string(message, "tag") or None,
        timeout_s=deadline_s,  # envd kills the process when the call's deadline passes
        pty_size=None if size is None else _pty_size(size),
    )
    return following(handle)


def _pty_size(size: Message) -> tuple[int, int]:
    return fields.integer(size, "cols") or 80, fields.integer(size, "rows") or 24


async def connect(agent: AgentClient, message: Message, _: float | None) -> AsyncIterator[Message]:
    return following(await agent.connect(await selected_pid(agent, message)))


async def list_processes(agent: AgentClient, _: Message) -> Message:
    return {"processes": [process_info_json(p) for p in await agent.list_processes()]}


async def send_signal(agent: AgentClient, message: Message) -> Message:
    signal = message.get("signal") or "SIGNAL_UNSPECIFIED"
    if signal in ("SIGNAL_UNSPECIFIED", 0):
        raise ConnectError("invalid_argument", "a signal is required")
    await agent.send_signal(await selected_pid(agent, message), signal)
    return {}


async def send_input(agent: AgentClient, message: Message) -> Message:
    pid = await selected_pid(agent, message)
    data = _input_bytes(fields.obj(message, "input"))
    await agent.send_input(pid, data)
    return {}


def _input_bytes(process_input: Message) -> bytes:
    """ProcessInput's oneof: stdin or pty bytes (the agent knows which the process has)."""
    return fields.data(process_input, "pty" if "pty" in process_input else "stdin")


async def close_stdin(agent: AgentClient, message: Message) -> Message:
    await agent.close_stdin(await selected_pid(agent, message))
    return {}


async def update(agent: AgentClient, message: Message) -> Message:
    pid = await selected_pid(agent, message)
    if "pty" in message:
        cols, rows = _pty_size(fields.obj(fields.obj(message, "pty"), "size"))
        await agent.resize_pty(pid, cols, rows)
    return {}


async def stream_input(agent: AgentClient, messages: AsyncIterator[Message]) -> Message:
    """StreamInput: a start event naming the process, then data events, in order."""
    pid: int | None = None
    async for message in messages:
        if "start" in message:
            pid = await selected_pid(agent, fields.obj(message, "start"))
        elif "data" in message:
            if pid is None:
                raise ConnectError("failed_precondition", "data before the start event")
            data = _input_bytes(fields.obj(fields.obj(message, "data"), "input"))
            await agent.send_input(pid, data)
    return {}


UNARY: dict[str, Unary] = {
    "List": list_processes,
    "SendSignal": send_signal,
    "SendInput": send_input,
    "CloseStdin": close_stdin,
    "Update": update,
}
SERVER_STREAMS: dict[str, ServerStream] = {"Start": start, "Connect": connect}
CLIENT_STREAMS: dict[str, ClientStream] = {"StreamInput": stream_input}
