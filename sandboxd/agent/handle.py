"""One subscriber's view of a process: its output from the moment it subscribed, then its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sandboxd.agent.messages import AgentClosed, End, ProcessEvent


class ProcessHandle:
    """Iterate for `Data` events and one final `End`; the iteration stops after `End`.

    If the sandbox ends first, iterating raises `AgentClosed`. Several handles can
    follow the same process; each sees every event from its subscription on. Call
    `close()` to stop following without touching the process.
    """

    def __init__(self, pid: int, unsubscribe: Callable[[ProcessHandle], None]) -> None:
        self.pid = pid
        self.end: End | None = None  # set once the End event has been iterated
        self._queue: asyncio.Queue[ProcessEvent | AgentClosed] = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._finished = False
        self._closed = False

    def push(self, item: ProcessEvent | AgentClosed) -> None:
        """Called by the client's reader, never blocks."""
        self._queue.put_nowait(item)

    def __aiter__(self) -> ProcessHandle:
        return self

    async def __anext__(self) -> ProcessEvent:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, AgentClosed):
            self._finished = True
            self.close()
            raise item
        if isinstance(item, End):
            self._finished = True
            self.end = item
            self.close()
        return item

    async def wait(self) -> End:
        """Skip the remaining output and return how the process ended."""
        async for _ in self:
            pass
        if self.end is None:  # iteration had already finished without an end
            raise AgentClosed("the process stream ended without an end event")
        return self.end

    def close(self) -> None:
        """Stop receiving this process's events. Idempotent."""
        if not self._closed:
            self._closed = True
            self._unsubscribe(self)
