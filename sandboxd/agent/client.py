"""The host side of the agent: one `AgentClient` per sandbox (wire format: agent.py).

Every method is a request to the agent inside the box; a failed one raises `AgentError`
with the agent's code (not_found, already_exists, ...), `AgentClosed` once the sandbox
has ended (or its agent broke the protocol: see `violation`), or
`AgentError("deadline_exceeded")` after `request_timeout_s`.

`as_user("root")` gives a client for the same channel whose commands and file operations
run as box root (envd's `user`); the agent refuses that where the box has no root.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Mapping,
    Sequence,
)
from typing import Any

from sandboxd.agent.channel import Channel, Result
from sandboxd.agent.handle import ProcessHandle
from sandboxd.agent.messages import (
    AgentClosed,
    AgentEvent,
    EntryInfo,
    ProcessInfo,
    ProcessStarted,
    checked_pid,
)
from sandboxd.agent.watch_events import WatchPage, checked_watcher_id

FILE_CHUNK_BYTES = 1 << 20
USERS = ("user", "root")  # who a request may act as (agent.py's USERS)


class AgentClient:
    """Talk to one sandbox's agent. Construct it inside the running event loop.

    `on_event` (also settable later) is called with `ProcessStarted` / `ProcessEnded`
    for each command started through this client, for logging; `closed` is a future
    that completes when the agent's stdout ends (the sandbox has ended).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_event: Callable[[AgentEvent], None] | None = None,
        request_timeout_s: float | None = 60.0,
    ) -> None:
        self._channel = Channel(reader, writer, request_timeout_s)
        self._channel.on_event = on_event
        self.closed: asyncio.Future[None] = self._channel.closed
        self.user = "user"

    def as_user(self, user: str) -> AgentClient:
        """This client, acting as `user` ("user" or "root") in the requests that run as
        someone: starting a process and the file operations. It shares the channel."""
        if user not in USERS:
            raise ValueError(f"unknown user {user!r}")
        if user == self.user:
            return self
        view = copy.copy(self)
        view.user = user
        return view

    def _as(self, args: Result) -> Result:
        """`args` with the acting user, when it is not the default one."""
        return args if self.user == "user" else {**args, "user": self.user}

    @classmethod
    def for_process(
        cls,
        process: asyncio.subprocess.Process,
        *,
        on_event: Callable[[AgentEvent], None] | None = None,
        request_timeout_s: float | None = 60.0,
    ) -> AgentClient:
        """A client over a process started with stdin=PIPE and stdout=PIPE."""
        if process.stdout is None or process.stdin is None:
            raise ValueError("the agent process needs stdin=PIPE and stdout=PIPE")
        return cls(
            process.stdout, process.stdin, on_event=on_event, request_timeout_s=request_timeout_s
        )

    @property
    def violation(self) -> str | None:
        """How the agent broke the protocol, once it has (the channel then ended)."""
        return self._channel.violation

    @property
    def on_event(self) -> Callable[[AgentEvent], None] | None:
        return self._channel.on_event

    @on_event.setter
    def on_event(self, hook: Callable[[AgentEvent], None] | None) -> None:
        self._channel.on_event = hook

    async def wait_ready(self) -> None:
        """Return once the agent has said it is up; raise AgentClosed if it died first."""
        ready: asyncio.Future[Any] = asyncio.ensure_future(self._channel.ready.wait())
        waiters: set[asyncio.Future[Any]] = {ready, self.closed}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._channel.ready.is_set():
            raise AgentClosed()

    async def aclose(self) -> None:
        """Close the agent's stdin (it then kills its processes and exits) and stop
        reading. Idempotent."""
        await self._channel.aclose()

    # --- processes ---

    async def start_process(
        self,
        cmd: str,
        args: Sequence[str] = (),
        envs: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stdin: bool = False,
        tag: str | None = None,
        *,
        timeout_s: float | None = None,
        pty_size: tuple[int, int] | None = None,
    ) -> ProcessHandle:
        """Start `cmd args` (envs merged over the sandbox's base env; cwd defaults to
        home) and follow it from its first byte. `timeout_s` kills it (SIGKILL) when
        it runs longer; `pty_size` (cols, rows) runs it on a terminal instead of pipes."""
        request: Result = {"cmd": cmd, "args": list(args), "envs": dict(envs or {})}
        request.update(stdin=stdin, cwd=cwd, tag=tag)
        if timeout_s:
            request["timeout_ms"] = max(1, round(timeout_s * 1000))
        if pty_size is not None:
            request["pty"] = {"cols": pty_size[0], "rows": pty_size[1]}
        handles: list[ProcessHandle] = []

        def follow_new_pid(result: Result) -> None:
            pid = checked_pid(result.get("pid"))
            handles.append(self._channel.follow(pid))
            started = ProcessStarted(pid=pid, cmd=cmd, args=list(args), tag=tag)
            self._channel.started(pid, cmd, started)

        try:
            await self._channel.call("start", self._as(request), on_ok=follow_new_pid)
        except BaseException:
            for handle in handles:
                handle.close()
            raise
        return handles[0]

    async def connect(self, pid: int) -> ProcessHandle:
        """Follow a running process's output from now on, then its end."""
        handle = self._channel.follow(pid)  # before asking, so its end cannot slip past
        try:
            await self._channel.call("connect", {"pid": pid})
        except BaseException:
            handle.close()
            raise
        return handle

    async def send_signal(self, pid: int, name: str | int) -> None:
        """Signal the process's group: "SIGKILL", "SIGNAL_SIGTERM", "INT" or a number."""
        await self._channel.call("signal", {"pid": pid, "signal": name})

    async def send_input(self, pid: int, data: bytes) -> None:
        """Write to its stdin (or pty); returns once the process has taken it all."""
        encoded = base64.b64encode(data).decode()
        await self._channel.call("input", {"pid": pid, "data": encoded})

    async def close_stdin(self, pid: int) -> None:
        """Close its stdin (EOF) once the input sent before has been written."""
        await self._channel.call("close_stdin", {"pid": pid})

    async def resize_pty(self, pid: int, cols: int, rows: int) -> None:
        await self._channel.call("resize", {"pid": pid, "cols": cols, "rows": rows})

    async def list_processes(self) -> list[ProcessInfo]:
        """The running processes started through the agent (by any client)."""
        result = await self._channel.call("list", {})
        return [ProcessInfo.from_result(item) for item in result["processes"]]

    # --- files ---

    async def read_file(self, path: str) -> bytes:
        return b"".join([chunk async for chunk in self.read_file_chunks(path)])

    async def read_file_chunks(
        self, path: str, chunk_bytes: int = FILE_CHUNK_BYTES
    ) -> AsyncGenerator[bytes, None]:
        """The file's bytes, one request per chunk: a slow reader never piles data up.
        Chunks are at most FILE_CHUNK_BYTES, which keeps each answer's line in bounds."""
        chunk_bytes = min(chunk_bytes, FILE_CHUNK_BYTES)
        opened = await self._channel.call("open", self._as({"path": path, "mode": "r"}))
        handle = int(opened["handle"])
        try:
            while True:
                args = {"handle": handle, "max_bytes": chunk_bytes}
                result = await self._channel.call("read", args)
                if data := base64.b64decode(result["data"]):
                    yield data
                if result["eof"]:
                    break
        finally:
            self._channel.notify("close", {"handle": handle})

    async def write_file(
        self,
        path: str,
        data: bytes | AsyncIterable[bytes],
        chunk_bytes: int = FILE_CHUNK_BYTES,
        metadata: Mapping[str, str] | None = None,
    ) -> EntryInfo:
        """Create or replace a file (and its missing parents) with `data`; its metadata
        becomes `metadata` (none clears it), kept once the data is written."""
        args: Result = {"path": path, "mode": "w", "metadata": dict(metadata or {})}
        opened = await self._channel.call("open", self._as(args))
        handle = int(opened["handle"])
        try:
            async for chunk in _rechunk(data, chunk_bytes):
                encoded = base64.b64encode(chunk).decode()
                await self._channel.call("write", {"handle": handle, "data": encoded})
        except BaseException:
            self._channel.notify("close", {"handle": handle})
            raise
        result = await self._channel.call("close", {"handle": handle})
        return EntryInfo.from_result(result["entry"])

    async def stat(self, path: str) -> EntryInfo:
        result = await self._channel.call("stat", self._as({"path": path}))
        return EntryInfo.from_result(result["entry"])

    async def list_dir(self, path: str, depth: int = 1) -> list[EntryInfo]:
        """Entries `depth` levels deep, parents before their children."""
        args = self._as({"path": path, "depth": depth})
        result = await self._channel.call("list_dir", args)
        return [EntryInfo.from_result(item) for item in result["entries"]]

    async def list_dir_pages(
        self, path: str, depth: int = 1, page_bytes: int | None = None
    ) -> AsyncGenerator[list[EntryInfo], None]:
        """list_dir's entries a page (about `page_bytes` of JSON, by default and at most
        the agent's 256 KiB) at a time, so that no answer is big and only one page is
        held; AgentError invalid_argument past the listing's limits."""
        opened = await self._channel.call("list_open", self._as({"path": path, "depth": depth}))
        handle = int(opened["handle"])
        page_args: Result = {"handle": handle}
        if page_bytes is not None:
            page_args["max_bytes"] = page_bytes
        try:
            while True:
                result = await self._channel.call("list_next", page_args)
                yield [EntryInfo.from_result(item) for item in result["entries"]]
                if result["done"]:
                    break
        finally:
            self._channel.notify("list_close", {"handle": handle})

    async def make_dir(self, path: str) -> EntryInfo:
        """Create a directory and its parents; AgentError already_exists if it exists."""
        result = await self._channel.call("make_dir", self._as({"path": path}))
        return EntryInfo.from_result(result["entry"])

    async def move(self, source: str, destination: str) -> EntryInfo:
        """Rename, creating the destination's parents; returns the destination's entry."""
        args = {"source": source, "destination": destination}
        result = await self._channel.call("move", self._as(args))
        return EntryInfo.from_result(result["entry"])

    async def remove(self, path: str) -> None:
        """Remove a file or a whole directory; AgentError not_found if missing."""
        await self._channel.call("remove", self._as({"path": path}))

    # --- watching directories ---

    async def watch_start(self, path: str, recursive: bool, include_entry: bool) -> int:
        """Start watching a directory (and its subdirectories if `recursive`); returns the
        watcher's id. AgentError not_found when it is missing."""
        args = {"path": path, "recursive": recursive, "include_entry": include_entry}
        result = await self._channel.call("watch_start", self._as(args))
        return checked_watcher_id(result.get("watcher"))

    async def watch_take(self, watcher: int, wait_s: float = 0.0) -> WatchPage:
        """The watcher's next events, waiting up to `wait_s` (the agent holds a wait at
        most 20 s) for one; an empty page when none came. AgentError resource_exhausted
        once its queue overflowed and the events queued before have been taken."""
        args = {"watcher": watcher, "wait_ms": max(0, round(wait_s * 1000))}
        return WatchPage.from_result(await self._channel.call("watch_take", args))

    async def watch_stop(self, watcher: int) -> None:
        """Stop the watcher and drop its events; AgentError not_found if there is none."""
        await self._channel.call("watch_stop", {"watcher": watcher})

    def watch_stop_soon(self, watcher: int) -> None:
        """watch_stop without waiting for the answer: safe in cleanup, even when cancelled."""
        self._channel.notify("watch_stop", {"watcher": watcher})


async def _rechunk(data: bytes | AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Pieces of at most `size` bytes, whatever the caller's chunking."""
    if isinstance(data, bytes | bytearray | memoryview):
        for offset in range(0, len(data), size):
            yield bytes(data[offset : offset + size])
        return
    async for chunk in data:
        for offset in range(0, len(chunk), size):
            yield bytes(chunk[offset : offset + size])
