"""The background loops: usage samples every few seconds, timeouts, and retention."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sandboxd.manager import SandboxManager
from sandboxd.store import Sample, TeamSample

log = logging.getLogger(__name__)

EXPIRY_CHECK_S = 0.5
RETENTION_CHECK_S = 3600.0


def sample_once(manager: SandboxManager, interval_s: float) -> int:
    """Sample every running sandbox and the team; returns the number of sandbox samples.
    A paused sandbox yields no sample."""
    now = manager.clock()
    ts_unix_s = int(now.timestamp())
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
        _every(interval_s, lambda: sample_once(manager, interval_s)),
        _every_async(EXPIRY_CHECK_S, manager.expire_due),
        _every(RETENTION_CHECK_S, lambda: _forget_old(manager, retention_days)),
    )


def _forget_old(manager: SandboxManager, retention_days: float) -> None:
    cutoff = manager.clock() - timedelta(days=retention_days)
    manager.store.forget_before(int(cutoff.timestamp()))


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
