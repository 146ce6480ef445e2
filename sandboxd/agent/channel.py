"""The JSON-lines channel to one agent: request ids, answers, process events.

Any number of requests and process streams share it. Each request waits for the answer
with its id; process events go to whichever `ProcessHandle`s follow that pid. The reader
never waits on a consumer, so one slow stream cannot hold up the others.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandboxd.agent.handle import ProcessHandle
from sandboxd.agent.messages import AgentClosed, AgentError, AgentEvent, Data, End, ProcessEnded

log = logging.getLogger(__name__)

Result = dict[str, Any]
_READ_BYTES = 1 << 20


@dataclass
class _Pending:
    future: asyncio.Future[Result]
    # Runs in the reader, before any later line: how `start` subscribes to the new pid
    # before the process's first output can arrive.
    on_ok: Callable[[Result], None] | None = None


class Channel:
    """One agent's stdin/stdout. Construct it inside the running event loop."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request_timeout_s: float | None,
    ) -> None:
        self.on_event: Callable[[AgentEvent], None] | None = None
        self._reader = reader
        self._writer = writer
        self._timeout_s = request_timeout_s
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._followers: dict[int, set[ProcessHandle]] = {}
        self._commands: dict[int, str] = {}  # pid -> cmd, for the end's hook event
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.ready = asyncio.Event()
        self._reader_task = loop.create_task(self._read_loop(), name="sandboxd-agent-reader")

    async def call(
        self, op: str, args: Result, on_ok: Callable[[Result], None] | None = None
    ) -> Result:
        """Send one request and return its result; raise its AgentError."""
        if self.closed.done():
            raise AgentClosed()
        request_id = next(self._ids)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, on_ok)
        try:
            async with asyncio.timeout(self._timeout_s):
                self._send(request_id, op, args)
                await self._writer.drain()
                return await future
        except TimeoutError:
            message = f"the agent did not answer '{op}' within {self._timeout_s} s"
            raise AgentError("deadline_exceeded", message) from None
        except ConnectionError as exc:
            raise AgentClosed(f"the sandbox agent's stdin is closed: {exc}") from None
        finally:
            self._pending.pop(request_id, None)

    def notify(self, op: str, args: Result) -> None:
        """Send without waiting for the answer: safe in cleanup, even when cancelled."""
        if not self.closed.done() and not self._writer.is_closing():
            self._send(next(self._ids), op, args)

    def follow(self, pid: int) -> ProcessHandle:
        """A new handle that receives the pid's events from now on."""
        handle = ProcessHandle(pid, self._unfollow)
        if self.closed.done():
            handle.push(AgentClosed())
        else:
            self._followers.setdefault(pid, set()).add(handle)
        return handle

    def started(self, pid: int, cmd: str, event: AgentEvent) -> None:
        """Remember who `pid` is, for its end's hook event, and tell the hook."""
        self._commands[pid] = cmd
        self.emit(event)

    def emit(self, event: AgentEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a logging hook must not break the channel
            log.exception("agent on_event hook failed for %r", event)

    async def aclose(self) -> None:
        """Close the agent's stdin and wait (5 s at most) for its stdout to end."""
        self._writer.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._reader_task), timeout=5)
        except (TimeoutError, ConnectionError):
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)

    def _send(self, request_id: int, op: str, args: Result) -> None:
        line = json.dumps({"id": request_id, "op": op, **args}, separators=(",", ":"))
        self._writer.write(line.encode() + b"\n")

    def _unfollow(self, handle: ProcessHandle) -> None:
        followers = self._followers.get(handle.pid)
        if followers is not None:
            followers.discard(handle)
            if not followers:
                del self._followers[handle.pid]

    async def _read_loop(self) -> None:
        buffer = bytearray()
        try:
            while chunk := await self._reader.read(_READ_BYTES):
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) >= 0:
                    self._dispatch(bytes(buffer[start:end]))
                    start = end + 1
                del buffer[:start]  # once per read: lines can be many and short
        except Exception:  # the reader's boundary: record it, then end as if closed
            log.exception("reading from the sandbox agent failed")
        finally:
            self._on_closed()

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            if "event" in message:
                self._on_event(message)
            else:
                self._on_answer(message)
        except Exception:  # a malformed line must not stop the other streams
            log.exception("bad line from the sandbox agent: %.200r", line)

    def _on_answer(self, message: Result) -> None:
        pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if pending is None or pending.future.done():
            return  # answered after its caller gave up
        if message.get("ok"):
            result = message.get("result") or {}
            if pending.on_ok is not None:
                pending.on_ok(result)
            pending.future.set_result(result)
        else:
            error = message.get("error") or {}
            code, text = str(error.get("code", "internal")), str(error.get("message", ""))
            pending.future.set_exception(AgentError(code, text))

    def _on_event(self, message: Result) -> None:
        kind, pid = message["event"], int(message.get("pid") or 0)
        if kind == "ready":
            self.ready.set()
        elif kind == "data" and pid in self._followers:
            data = Data(stream=message["stream"], data=base64.b64decode(message["data"]))
            for handle in self._followers[pid]:
                handle.push(data)
        elif kind == "end":
            end = End.from_event(message)
            for handle in self._followers.pop(pid, set()):
                handle.push(end)
            self.emit(ProcessEnded(pid=pid, cmd=self._commands.pop(pid, None), end=end))

    def _on_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(AgentClosed())
        for followers in self._followers.values():
            for handle in followers:
                handle.push(AgentClosed())
        self._followers.clear()
