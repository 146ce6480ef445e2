"""Waiting for a condition the kernel reports only by polling (cgroup.events, /proc)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `done` (1 ms, backing off to 20 ms) until true; TimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    delay_s = 0.001
    while not done():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.02)
