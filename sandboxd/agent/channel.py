"""The JSON-lines channel to one agent: request ids, answers, process events.

Any number of requests and process streams share it. Each request waits for the answer
with its id; process events go to whichever `ProcessHandle`s follow that pid. The reader
never waits on a consumer, so one slow stream cannot hold up the others.

The stream is untrusted (code in the box might write for the agent), so the reader holds
it to the protocol: lines of at most MAX_LINE_BYTES, read in one pass; events only for the
processes sandboxd started, with every field checked (`messages`); process output within
the agent's windows, acknowledged only once every handle has taken it, so unread output
costs the agent's window and never more. Anything else is a `ProtocolViolation`: the
channel records it in `violation`, stops reading and ends as if the agent had gone, and
the manager kills the sandbox, saying why.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandboxd.agent.agent import (
    BOX_OUTPUT_WINDOW_BYTES,
    OUTPUT_CHUNK_BYTES,
    PROCESS_OUTPUT_WINDOW_BYTES,
)
from sandboxd.agent.handle import ProcessHandle
from sandboxd.agent.lines import LineSplitter
from sandboxd.agent.messages import (
    STREAM_NAMES,
    AgentClosed,
    AgentError,
    AgentEvent,
    Data,
    End,
    ProcessEnded,
    ProtocolViolation,
    checked_pid,
)

log = logging.getLogger(__name__)

Result = dict[str, Any]
_READ_BYTES = 1 << 20
# The longest honest line is a 2 MiB directory listing (the agent's LIST_MAX_BYTES) or a
# 1 MiB file chunk in base64 (1.4 MB, see client.FILE_CHUNK_BYTES); twice the larger leaves
# room for JSON escaping. It is also the most one box's unfinished line costs sandboxd.
MAX_LINE_BYTES = 4 << 20
# A data event carries at most one chunk of output, in base64.
MAX_DATA_B64_CHARS = 4 * -(-OUTPUT_CHUNK_BYTES // 3)
# Acknowledge output in steps of this much while a consumer is behind (and everything at
# once when it has caught up): a quarter window keeps the agent sending without a stall.
ACK_STEP_BYTES = PROCESS_OUTPUT_WINDOW_BYTES // 4
# An error message from the agent reaches API callers; longer ones are cut.
MAX_ERROR_MESSAGE_CHARS = 4096
MAX_ERROR_CODE_CHARS = 40


@dataclass
class _Pending:
    future: asyncio.Future[Result]
    # Runs in the reader, before any later line: how `start` subscribes to the new pid
    # before the process's first output can arrive.
    on_ok: Callable[[Result], None] | None = None


@dataclass
class _Flow:
    """One pid's output sent by the agent and not yet acknowledged, and the handles that
    may still hold some of it."""

    unacked_bytes: int = 0
    handles: set[ProcessHandle] = field(default_factory=set)


class Channel:
    """One agent's stdin/stdout. Construct it inside the running event loop."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request_timeout_s: float | None,
    ) -> None:
        self.on_event: Callable[[AgentEvent], None] | None = None
        self.violation: str | None = None  # how the agent broke the protocol, if it did
        self._reader = reader
        self._writer = writer
        self._timeout_s = request_timeout_s
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._followers: dict[int, set[ProcessHandle]] = {}
        # The processes sandboxd started and whose end has not come: pid -> cmd. Events for
        # any other pid are violations.
        self._commands: dict[int, str] = {}
        self._flows: dict[int, _Flow] = {}
        self._unacked_total_bytes = 0
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.ready = asyncio.Event()
        self._reader_task = loop.create_task(self._read_loop(), name="sandboxd-agent-reader")

    async def call(
        self, op: str, args: Result, on_ok: Callable[[Result], None] | None = None
    ) -> Result:
        """Send one request and return its result; raise its AgentError."""
        if self.closed.done():
            raise self._closed_error()
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
        handle = ProcessHandle(pid, self._unfollow, self._taken)
        if self.closed.done():
            handle.push(self._closed_error())
        else:
            self._followers.setdefault(pid, set()).add(handle)
        return handle

    def started(self, pid: int, cmd: str, event: AgentEvent) -> None:
        """Remember that sandboxd started `pid` (only such pids may have events), and who
        it is, for its end's hook event; tell the hook."""
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

    def _closed_error(self) -> AgentClosed:
        if self.violation is not None:
            return AgentClosed(f"the sandbox agent broke the protocol: {self.violation}")
        return AgentClosed()

    # --- flow control ---

    def _unfollow(self, handle: ProcessHandle) -> None:
        followers = self._followers.get(handle.pid)
        if followers is not None:
            followers.discard(handle)
            if not followers:
                del self._followers[handle.pid]
        flow = self._flows.get(handle.pid)
        if flow is not None:
            flow.handles.discard(handle)  # what it held is dropped: acknowledge it
            self._ack(handle.pid)

    def _taken(self, handle: ProcessHandle) -> None:
        self._ack(handle.pid)

    def _ack(self, pid: int) -> None:
        """Acknowledge the pid's output that every handle has taken (or dropped)."""
        flow = self._flows.get(pid)
        if flow is None:
            return
        backlog_bytes = max((h.queued_bytes for h in flow.handles), default=0)
        ackable_bytes = flow.unacked_bytes - backlog_bytes
        if ackable_bytes <= 0 or (backlog_bytes and ackable_bytes < ACK_STEP_BYTES):
            return
        self.notify("ack", {"pid": pid, "bytes": ackable_bytes})
        flow.unacked_bytes -= ackable_bytes
        self._unacked_total_bytes -= ackable_bytes
        if flow.unacked_bytes == 0:
            del self._flows[pid]

    # --- reading ---

    async def _read_loop(self) -> None:
        lines = LineSplitter(MAX_LINE_BYTES)
        try:
            while chunk := await self._reader.read(_READ_BYTES):
                for line in lines.split(chunk):
                    self._dispatch(line)
        except ProtocolViolation as exc:
            self.violation = str(exc)
            log.warning("the sandbox agent broke the protocol: %s", exc)
        except Exception:  # the reader's boundary: record it, then end as if closed
            log.exception("reading from the sandbox agent failed")
        finally:
            self._on_closed()

    def _dispatch(self, line: bytes) -> None:
        """Handle one line; ProtocolViolation for anything the protocol does not allow."""
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ProtocolViolation("a line that is not a JSON object")
            if "event" in message:
                self._on_event(message)
            else:
                self._on_answer(message)
        except ProtocolViolation:
            raise
        except Exception as exc:  # malformed: bad JSON, nesting too deep, wrong types...
            raise ProtocolViolation(f"a malformed message ({type(exc).__name__})") from exc

    def _on_answer(self, message: Result) -> None:
        request_id, ok = message.get("id"), message.get("ok")
        if not isinstance(ok, bool):
            raise ProtocolViolation("an answer without a boolean 'ok'")
        pending = self._pending.get(request_id) if isinstance(request_id, int) else None
        if ok:
            result = message.get("result")
            if not isinstance(result, dict):
                raise ProtocolViolation("an answer whose result is not an object")
            if pending is None or pending.future.done():
                return  # answered after its caller gave up
            if pending.on_ok is not None:
                pending.on_ok(result)
            pending.future.set_result(result)
        else:
            error = _checked_error(message.get("error"))
            if pending is not None and not pending.future.done():
                pending.future.set_exception(error)

    def _on_event(self, message: Result) -> None:
        kind = message["event"]
        if kind == "ready":
            if self.ready.is_set():
                raise ProtocolViolation("a second ready event")
            self.ready.set()
            return
        if kind not in ("data", "end"):
            raise ProtocolViolation(f"an unknown event {kind!r:.40}")
        pid = checked_pid(message.get("pid"))
        if pid not in self._commands:
            raise ProtocolViolation(f"a {kind} event for pid {pid}, not a running process of ours")
        if kind == "data":
            self._on_data(pid, message)
            return
        try:
            end = End.from_event(message)
        except ProtocolViolation as exc:
            raise ProtocolViolation(f"pid {pid}: {exc}") from None
        for handle in self._followers.pop(pid, set()):
            handle.push(end)
        self.emit(ProcessEnded(pid=pid, cmd=self._commands.pop(pid), end=end))

    def _on_data(self, pid: int, message: Result) -> None:
        stream, encoded = message.get("stream"), message.get("data")
        if stream not in STREAM_NAMES:
            raise ProtocolViolation(f"a data event for an unknown stream {stream!r:.20}")
        if not isinstance(encoded, str) or len(encoded) > MAX_DATA_B64_CHARS:
            raise ProtocolViolation(f"a data event over {OUTPUT_CHUNK_BYTES} bytes")
        try:
            data = Data(stream=stream, data=base64.b64decode(encoded, validate=True))
        except binascii.Error:
            raise ProtocolViolation("a data event that is not base64") from None
        flow = self._flows.setdefault(pid, _Flow())
        flow.unacked_bytes += len(data.data)
        self._unacked_total_bytes += len(data.data)
        if flow.unacked_bytes > PROCESS_OUTPUT_WINDOW_BYTES:
            raise ProtocolViolation(f"output of pid {pid} past its window")
        if self._unacked_total_bytes > BOX_OUTPUT_WINDOW_BYTES:
            raise ProtocolViolation("output of the box past its window")
        for handle in self._followers.get(pid, ()):
            handle.push(data)
            flow.handles.add(handle)
        self._ack(pid)  # at once when nobody follows: unread output is not kept

    def _on_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(self._closed_error())
        for followers in self._followers.values():
            for handle in followers:
                handle.push(self._closed_error())
        self._followers.clear()


def _checked_error(error: object) -> AgentError:
    """The AgentError an error answer describes, its message cut to a bounded length."""
    if not isinstance(error, dict):
        raise ProtocolViolation("an error answer without an error object")
    code, text = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(text, str) or len(code) > MAX_ERROR_CODE_CHARS:
        raise ProtocolViolation("an error answer with a bad code or message")
    return AgentError(code, text[:MAX_ERROR_MESSAGE_CHARS])
