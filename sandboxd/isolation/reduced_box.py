"""A running box of the "reduced" level: a process tree with rlimits, watched by psutil."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil

from sandboxd.isolation.base import BoxSpec, BoxUsage, OomKill
from sandboxd.isolation.disk import DiskUsage, statvfs_usage
from sandboxd.isolation.polling import wait_until
from sandboxd.isolation.proctree import ProcessTree, all_dead
from sandboxd.isolation.reduced_uid import kill_uid

_KILL_TIMEOUT_S = 5.0
# bwrap reports a child killed by signal N as exit status 128 + N.
_KILLED_EXITS = (-9, 128 + 9)


def tree_bytes(path: Path) -> int:
    """Bytes allocated to the files under `path` (st_blocks: the holes of sparse files
    do not count); files vanishing meanwhile are skipped."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


class ReducedBox:
    """One box without cgroups. `plain_dirs` (home, tmp) are host directories without
    bwrap; None when bwrap gives the box tmpfs mounts (usage reads them through
    /proc/<pid>/root). `host_uid` is the box's own host uid (None: it runs as sandboxd's
    uid); `extra_dirs` are deleted with `box_dir`."""

    def __init__(
        self,
        spec: BoxSpec,
        process: asyncio.subprocess.Process,
        box_dir: Path,
        plain_dirs: tuple[Path, Path] | None,
        emit_oom: Callable[[OomKill], None],
        on_destroyed: Callable[[ReducedBox], None],
        host_uid: int | None = None,
        extra_dirs: tuple[Path, ...] = (),
    ) -> None:
        self.sandbox_id = spec.sandbox_id
        self.host_uid = host_uid
        self._extra_dirs = extra_dirs
        self.spec = spec
        self.process = process
        self.box_dir = box_dir
        self.stderr_path = box_dir / "stderr.log"
        self.tree = ProcessTree(process.pid)
        self._plain_dirs = plain_dirs
        self._emit_oom = emit_oom
        self._on_destroyed = on_destroyed
        self._killing = False
        self._destroyed = False
        self._exit_watch = asyncio.ensure_future(self._watch_exit())

    async def _watch_exit(self) -> None:
        # A SIGKILL we did not send may be the kernel's (global) OOM killer, or, without
        # bwrap, box code (it runs as the main process's uid). Without a kernel record it is
        # reported as a suspect only, and not counted: the manager's "oom" ending needs a
        # count, which box code must not be able to forge.
        code = await self.process.wait()
        if code in _KILLED_EXITS and not self._killing:
            kill = OomKill(
                self.sandbox_id, datetime.now(UTC), self.process.pid, None,
                self.spec.memory_mb << 20,
            )  # fmt: skip
            self._emit_oom(kill)

    async def freeze(self) -> None:
        """SIGSTOP every process of the tree; wait until all are stopped."""
        self.tree.stop()
        await wait_until(self._all_stopped, 2.0, "every process stopped")

    def _all_stopped(self) -> bool:
        for proc in self.tree.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if proc.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                    return False
        return True

    async def thaw(self) -> None:
        """SIGCONT every process of the tree."""
        self.tree.cont()

    async def kill(self) -> None:
        """SIGKILL the tree (stopped processes die too) and, with a uid of its own, every
        process of that uid (one that left the tree too); wait until none runs and reap
        the root. Idempotent."""
        self._killing = True
        killed = self.tree.kill()
        if self.host_uid is not None and not self._destroyed:  # after: the uid may be reused
            await kill_uid(self.host_uid)
        await wait_until(lambda: all_dead(killed), _KILL_TIMEOUT_S, "the tree to die")
        if self.process.returncode is None:
            await asyncio.wait_for(self.process.wait(), _KILL_TIMEOUT_S)
        await self._exit_watch
        if self.process.stdin is not None:
            self.process.stdin.close()  # nobody reads it any more

    async def destroy(self) -> None:
        """Kill if needed, then delete the box's directory. Idempotent."""
        if self._destroyed:
            return
        await self.kill()
        for path in (self.box_dir, *self._extra_dirs):
            shutil.rmtree(path, ignore_errors=True)
        self._destroyed = True
        self._on_destroyed(self)

    def usage(self) -> BoxUsage:
        """Usage now, over the process tree: CPU since the previous call (0 at the first
        call), memory = summed RSS (shared pages count once per process), no page cache."""
        tree = self.tree.usage()
        disk = self.disk_usage()
        cpu_pct = tree.cpu_pct_one_core / max(1, self.spec.cpu_count)
        return BoxUsage(
            cpu_used_pct=max(0.0, min(100.0, cpu_pct)),
            mem_used_bytes=tree.rss_bytes,
            mem_cache_bytes=0,
            mem_total_bytes=self.spec.memory_mb << 20,
            disk_used_bytes=disk.used_bytes,
            disk_total_bytes=disk.total_bytes,
        )

    def disk_usage(self) -> DiskUsage:
        """Bytes used in the box's home and /tmp, and the quota (disk_size_mb)."""
        total = self.spec.disk_size_mb << 20
        if self._plain_dirs is not None:
            return DiskUsage(sum(tree_bytes(d) for d in self._plain_dirs), total)
        inner = self.tree.first_child_pid()  # bwrap's child: PID 1 of the box
        if inner is None:
            return DiskUsage(0, total)
        root = Path(f"/proc/{inner}/root")
        try:
            used = sum(statvfs_usage(root / p).used_bytes for p in ("home/user", "tmp"))
        except OSError:  # the box is exiting
            used = 0
        return DiskUsage(used, total)

    def oom_kill_count(self) -> int:
        """OOM kills a kernel record confirms: none at this level (no memory cgroup), so 0.
        A SIGKILL of the main process that sandboxd did not send is only reported, as a
        suspect, to the `emit_oom` callback; MemoryError from RLIMIT_DATA is not seen."""
        return 0
