"""The background loops: usage samples every few seconds, timeouts, and retention."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sandboxd.manager import SandboxManager
from sandboxd.store import Sample, TeamSample

log = logging.getLogger(__name__)

EXPIRY_CHECK_S = 0.5
# Samples are stamped in whole seconds, with their tick's time. Ticks fall on a fixed
# wall-clock grid (half a second past each multiple of the interval), not an interval after
# the last sample ended: they never drift, no two share a stamp, and a tick is skipped only
# when the loop was busy for a whole interval.
TICK_OFFSET_S = 0.5
RETENTION_CHECK_S = 3600.0


def sample_once(manager: SandboxManager, interval_s: float, ts_unix_s: int) -> int:
    """Sample every running sandbox and the team, stamped `ts_unix_s` (the tick's); returns
    the number of sandbox samples. A paused sandbox yields no sample."""
    now = manager.clock()
    samples = []
    for live in list(manager.live.values()):
        if live.record.state != "running":
            continue
        try:
            usage = live.box.usage()
        except OSError as gone:  # the box ended between the listing and the reading
            log.debug("no sample of %s: %s", live.record.sandbox_id, gone)
            continue
        samples.append(
            Sample(
                sandbox_id=live.record.sandbox_id,
                ts_unix_s=ts_unix_s,
                cpu_count=live.record.cpu_count,
                cpu_used_pct=round(usage.cpu_used_pct, 2),
                mem_used_bytes=usage.mem_used_bytes,
                mem_total_bytes=usage.mem_total_bytes,
                mem_cache_bytes=usage.mem_cache_bytes,
                disk_used_bytes=usage.disk_used_bytes,
                disk_total_bytes=usage.disk_total_bytes,
            )
        )
    manager.store.add_samples(samples)
    window_start = now - timedelta(seconds=interval_s)
    started = [when for when in manager.start_times if when > window_start]
    manager.start_times[:] = started
    running = sum(1 for live in manager.live.values() if live.record.state == "running")
    manager.store.add_team_sample(TeamSample(ts_unix_s, running, len(started) / interval_s))
    return len(samples)


async def run_background(manager: SandboxManager, interval_s: float, retention_days: float) -> None:
    """Run the sampler, the timeout check and retention until cancelled."""
    await asyncio.gather(
        _on_ticks(interval_s, lambda tick_s: sample_once(manager, interval_s, int(tick_s))),
        _every_async(EXPIRY_CHECK_S, manager.expire_due),
        _every(RETENTION_CHECK_S, lambda: _forget_old(manager, retention_days)),
    )


def _forget_old(manager: SandboxManager, retention_days: float) -> None:
    cutoff = manager.clock() - timedelta(days=retention_days)
    manager.store.forget_before(int(cutoff.timestamp()))


def next_tick_s(now_s: float, period_s: float) -> float:
    """The first tick after `now_s` (Unix seconds): ticks fall `TICK_OFFSET_S` past each
    whole multiple of `period_s`."""
    return (math.floor((now_s - TICK_OFFSET_S) / period_s) + 1) * period_s + TICK_OFFSET_S


async def _on_ticks(period_s: float, work: Callable[[float], object]) -> None:
    """Run `work(tick)` at each tick of the wall clock (see `next_tick_s`); a tick missed
    while the loop was busy is skipped, not made up."""
    last_tick_s = 0.0
    while True:
        # From the later of now and the last tick: a wake-up a hair early, or a rounding
        # error, must not give the same tick twice.
        tick_s = next_tick_s(max(time.time(), last_tick_s + period_s / 2), period_s)
        await asyncio.sleep(tick_s - time.time())
        last_tick_s = tick_s
        try:
            work(tick_s)
        except Exception:  # a loop boundary: log and keep sampling
            log.exception("background work failed")


async def _every(period_s: float, work: Callable[[], object]) -> None:
    while True:
        try:
            work()
        except Exception:  # a loop boundary: log and keep sampling
            log.exception("background work failed")
        await asyncio.sleep(period_s)


async def _every_async(period_s: float, work: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await work()
        except Exception:  # a loop boundary: log and keep checking
            log.exception("background work failed")
        await asyncio.sleep(period_s)
