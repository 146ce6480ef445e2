"""The async E2B client, driven from the scheduler's worker threads.

The batch metrics of N sandboxes are N/100 requests. `AsyncE2BClient` already sends the
calls of one step concurrently with bounded concurrency (10 in flight; past that httpx's
async client turns CPU-bound: docs/PERFORMANCE.md, "HTTP polling"), so the collector keeps
one event loop in a thread of its own for the whole process and hands it each action. One
long-lived loop, rather than `asyncio.run` per tick, keeps the client's keep-alive connections
(and their TLS sessions, against E2B's cloud) from one tick to the next; a sync client with a
thread pool would need its own chunking and bounding, which the async client already does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from e2bapi import AsyncE2BClient
from e2bapi.exchange import Exchange

T = TypeVar("T")


class AsyncActions:
    """Runs actions on an `AsyncE2BClient` in an event loop thread; `run` blocks the
    caller's thread until the action is done. Thread-safe. Close it with `close()`."""

    def __init__(self, client: AsyncE2BClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="sandscope-async-client", daemon=True
        )
        self._thread.start()
        self._closed = False

    def run(self, action: Exchange[T]) -> T:
        """Drive `action` to its end on the async client; raises its `E2BError`s."""
        return self._wait(self._client.run(action))

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coroutine.close()
            raise RuntimeError("the async client is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        """Close the client's connections, then stop and close the loop. Idempotent."""
        if self._closed:
            return
        try:
            self._wait(self._client.aclose())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
