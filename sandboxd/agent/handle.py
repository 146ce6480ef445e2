"""One subscriber's view of a process: its output from the moment it subscribed, then its end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sandboxd.agent.messages import AgentClosed, Data, End, ProcessEvent


class ProcessHandle:
    """Iterate for `Data` events and one final `End`; the iteration stops after `End`.

    If the sandbox ends first, iterating raises `AgentClosed`. Several handles can
    follow the same process; each sees every event from its subscription on. Call
    `close()` to stop following without touching the process.

    The queue holds at most what the agent may send unacknowledged (its output window):
    the channel acknowledges output only once every handle has taken it, so a handle that
    nobody iterates makes the process block, not this queue grow. `queued_bytes` is what
    it holds now.
    """

    def __init__(
        self,
        pid: int,
        unsubscribe: Callable[[ProcessHandle], None],
        on_taken: Callable[[ProcessHandle], None] | None = None,
    ) -> None:
        self.pid = pid
        self.end: End | None = None  # set once the End event has been iterated
        self.queued_bytes = 0
        self._queue: asyncio.Queue[ProcessEvent | AgentClosed] = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._on_taken = on_taken
        self._finished = False
        self._closed = False

    def push(self, item: ProcessEvent | AgentClosed) -> None:
        """Called by the client's reader, never blocks."""
        if self._closed:
            return  # nobody will take it: keeping it would only hold memory
        if isinstance(item, Data):
            self.queued_bytes += len(item.data)
        self._queue.put_nowait(item)

    def __aiter__(self) -> ProcessHandle:
        return self

    async def __anext__(self) -> ProcessEvent:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, Data):
            self.queued_bytes -= len(item.data)
            if self._on_taken is not None:
                self._on_taken(self)
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
        """Stop receiving this process's events and drop what is queued. Idempotent."""
        if not self._closed:
            self._closed = True
            self._finished = True  # iterating a closed handle stops, never waits forever
            while not self._queue.empty():  # its output is acknowledged, not kept
                self._queue.get_nowait()
            self.queued_bytes = 0
            self._unsubscribe(self)
