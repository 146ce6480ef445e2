"""A running box of the "full" level: its process, cgroups, disk, host uid and network."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

from sandboxd.isolation.base import BoxSpec, BoxUsage
from sandboxd.isolation.cgroups import BoxCgroups
from sandboxd.isolation.disk import LoopDisk
from sandboxd.isolation.egress import Egress
from sandboxd.isolation.network import BoxNetwork

_KILL_TIMEOUT_S = 5.0


def cpu_pct(delta_cpu_ns: int, delta_wall_s: float, cpu_count: int) -> float:
    """CPU use in % of the box's cores (100 = all of them busy), capped at 100."""
    if delta_wall_s <= 0 or cpu_count <= 0:
        return 0.0
    pct = delta_cpu_ns / 1e9 / (delta_wall_s * cpu_count) * 100
    return max(0.0, min(100.0, pct))


class FullBox:
    """One box: a process tree in its cgroups, on its loop disk, as its own host uid."""

    def __init__(
        self,
        spec: BoxSpec,
        process: asyncio.subprocess.Process,
        cgroups: BoxCgroups,
        disk: LoopDisk,
        host_uid: int,
        on_destroyed: Callable[[FullBox], None],
        netns_fd: int | None = None,
        network: BoxNetwork | None = None,
    ) -> None:
        """`host_uid`: R, the first host id of the box's range (box root; its user is
        R + 1000). `netns_fd`: the box's network namespace (made by host root; closed on
        destroy). `network`: its slirp4netns, None when it has no way out."""
        self.sandbox_id = spec.sandbox_id
        self.spec = spec
        self.process = process
        self.cgroups = cgroups
        self.disk = disk
        self.host_uid = host_uid
        self._on_destroyed = on_destroyed
        self.netns_fd = netns_fd
        self.network = network
        # The rules in force; without a spec's egress, the box has no way out.
        self.egress = spec.egress or Egress(deny_out=(IPv4Network("0.0.0.0/0"),))
        self._last_cpu_ns = 0
        self._last_wall_s = time.monotonic()
        self._last_oom_count = 0
        self._destroyed = False

    @property
    def stderr_path(self) -> Path:
        """The box's stderr (bwrap's errors, the agent's tracebacks). It lives on the box's
        own disk, so its size counts against the box's quota; gone after `destroy`."""
        return self.disk.private_dir / "stderr.log"

    async def freeze(self) -> None:
        """Freeze every process (cgroup v2's cgroup.freeze on either backend): no CPU,
        memory kept."""
        await self.cgroups.freeze()

    async def thaw(self) -> None:
        """Resume a frozen box."""
        await self.cgroups.thaw()

    async def kill(self) -> None:
        """SIGKILL the whole group (works while frozen), wait until it is empty and reap
        the launched process. Idempotent."""
        self.cgroups.kill()
        await self.cgroups.wait_empty(_KILL_TIMEOUT_S)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()  # only if it somehow left its cgroups
            await asyncio.wait_for(self.process.wait(), _KILL_TIMEOUT_S)
        if self.process.stdin is not None:
            self.process.stdin.close()  # nobody reads it any more

    async def destroy(self) -> None:
        """Kill if needed, then remove the cgroups, unmount and delete the disk, free the
        host uid. Idempotent."""
        if self._destroyed:
            return
        await self.kill()
        with contextlib.suppress(OSError):
            self._last_oom_count = self.cgroups.oom_kill_count()
        await self.cgroups.remove()
        await self.disk.remove()
        if self.network is not None:
            await self.network.close()
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None
        self._destroyed = True
        # Only now: a box that failed to go away stays known (and its uid taken), so a
        # later destroy can retry and cleanup_leftovers leaves it alone meanwhile.
        self._on_destroyed(self)

    def usage(self) -> BoxUsage:
        """Usage now; CPU since the previous call (or since launch). OSError after destroy."""
        now_s = time.monotonic()
        cg = self.cgroups.usage()
        disk = self.disk.usage()
        pct = cpu_pct(cg.cpu_ns - self._last_cpu_ns, now_s - self._last_wall_s, self.spec.cpu_count)
        self._last_cpu_ns, self._last_wall_s = cg.cpu_ns, now_s
        return BoxUsage(
            cpu_used_pct=pct,
            mem_used_bytes=cg.mem_working_set_bytes,
            mem_cache_bytes=cg.mem_cache_bytes,
            mem_total_bytes=cg.mem_limit_bytes,
            disk_used_bytes=disk.used_bytes,
            disk_total_bytes=disk.total_bytes,
        )

    def oom_kill_count(self) -> int:
        """The kernel's OOM kill counter of the box's memory cgroup (last value after
        destroy)."""
        if not self._destroyed:
            with contextlib.suppress(OSError):
                self._last_oom_count = self.cgroups.oom_kill_count()
        return self._last_oom_count
