"""What both cgroup backends share: the interface a box's cgroups offer (`BoxCgroups`),
the file formats, the seam through which groups are made and written (`CgroupFs`), and a
group of the v2 hierarchy with its freeze, kill and events (`V2Group`).

The hybrid backend (`cgroups_v1`) uses a `V2Group` under the unified mount for pause and
kill only; the v2 backend (`cgroups_v2`) uses one for everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sandboxd.isolation.polling import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The CFS period both backends use; a box's quota is `cpu_count` periods per period.
CPU_PERIOD_US = 100_000
# The shim that joins its own PID to every group, then execs: the box's first process is
# inside its cgroups before it runs anything, without a preexec_fn in a threaded server.
_JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
    'n=$((n - 1)); done; exec "$@"'
)
# How often `remove_groups` retries an rmdir the kernel answers with EBUSY (tasks of a
# killed group still exiting): often enough to finish within a few ms of the last exit.
_RMDIR_RETRY_S = 0.01


@dataclass(frozen=True)
class CgroupLimits:
    """Limits of one box: memory in bytes, CPU in whole cores, processes in count."""

    memory_bytes: int
    cpu_count: int
    max_pids: int


@dataclass(frozen=True)
class CgroupUsage:
    """One reading. `cpu_ns` is cumulative CPU time in ns; memory in bytes, where the
    working set is usage minus inactive page cache (as docker reports it)."""

    cpu_ns: int
    mem_working_set_bytes: int
    mem_cache_bytes: int
    mem_limit_bytes: int
    oom_kills: int
    pids: int


class BoxCgroups(Protocol):
    """The cgroups of one box, whichever backend made them."""

    name: str

    @property
    def memcg_path(self) -> str:
        """The memory cgroup as the kernel names it in OOM messages: `/<parent>/<name>`."""

    def create(self, limits: CgroupLimits) -> None:
        """Make the groups and set their limits; on failure remove what this call made.
        FileExistsError when a group of that name is already there (a leftover)."""

    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` files a launch shim writes its PID into."""

    def exists(self) -> bool:
        """True while any of the groups is still there."""

    def events(self) -> dict[str, int]:
        """The v2 `cgroup.events`: `populated` and `frozen`, 0 or 1."""

    def is_populated(self) -> bool:
        """True while any process is in the group."""

    def pids(self) -> list[int]:
        """Host PIDs of the box's processes."""

    async def freeze(self, timeout_s: float = 2.0) -> None:
        """Freeze the group and wait until every task is frozen."""

    async def thaw(self, timeout_s: float = 2.0) -> None:
        """Thaw the group and wait until it says `frozen 0`."""

    def kill(self) -> None:
        """SIGKILL every process, frozen or not. No-op if the group is gone."""

    async def wait_empty(self, timeout_s: float = 5.0) -> None:
        """Wait until no process is left."""

    async def remove(self, timeout_s: float = 5.0) -> None:
        """rmdir every group, retrying while the kernel says EBUSY."""

    def usage(self) -> CgroupUsage:
        """CPU, memory and process counts now (OSError if the groups are gone)."""

    def oom_kill_count(self) -> int:
        """The kernel's count of processes OOM-killed in the box's memory cgroup."""


class CgroupFs(Protocol):
    """How groups are made, removed and written: the kernel's cgroupfs, or a fake of it
    in tests (reads are plain file reads, which a fake serves in the kernel's formats)."""

    def mkdir(self, path: Path) -> None:
        """Make one group (FileExistsError if there); the kernel fills in its files."""

    def rmdir(self, path: Path) -> None:
        """Remove one group (OSError EBUSY while it has tasks or children)."""

    def write(self, path: Path, value: str) -> None:
        """Write `value` to an existing interface file in one write(2)."""


class KernelCgroupFs:
    """The real cgroupfs."""

    def mkdir(self, path: Path) -> None:
        """mkdir(2) one group."""
        path.mkdir()

    def rmdir(self, path: Path) -> None:
        """rmdir(2) one group."""
        path.rmdir()

    def write(self, path: Path, value: str) -> None:
        """`write_cgroup_file`."""
        write_cgroup_file(path, value)


KERNEL_FS = KernelCgroupFs()


def write_cgroup_file(path: Path, value: str) -> None:
    """Write `value` in one write(2), so the kernel's EINVAL/EBUSY reaches the caller."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_keyed(path: Path) -> dict[str, int]:
    """Parse a flat-keyed cgroup file (`key value` per line) such as memory.stat."""
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def read_int(path: Path) -> int:
    """Read a single-number cgroup file; `max` (no limit) reads as -1."""
    text = path.read_text().strip()
    return -1 if text == "max" else int(text)


def join_shim_argv(procs_files: Sequence[Path], argv: list[str]) -> list[str]:
    """argv that writes its own PID into each `cgroup.procs` file, then execs `argv`."""
    files = [str(p) for p in procs_files]
    return ["/bin/sh", "-c", _JOIN_SCRIPT, "sandboxd-join", str(len(files)), *files, *argv]


def try_rmdir(path: Path, fs: CgroupFs = KERNEL_FS) -> bool:
    """True when `path` is gone; False while the kernel says it is busy."""
    try:
        fs.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return False
        raise
    return True


async def remove_groups(paths: Sequence[Path], timeout_s: float, fs: CgroupFs = KERNEL_FS) -> None:
    """rmdir each of `paths`, retrying while the kernel says EBUSY (tasks still exiting);
    TimeoutError when one is still busy after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    for path in paths:
        while not try_rmdir(path, fs):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"cgroup {path} still busy after {timeout_s} s")
            await asyncio.sleep(_RMDIR_RETRY_S)


class V2Group:
    """One group of a cgroup2 hierarchy: its processes, events, freeze and kill.
    `cgroup.freeze` stops a group without the v1 freezer's flaw (a v1-frozen task ignores
    SIGKILL until thawed) and `cgroup.kill` kills it even while frozen (Linux >= 5.14)."""

    def __init__(self, path: Path, fs: CgroupFs = KERNEL_FS) -> None:
        self.path = path
        self.fs = fs

    def events(self) -> dict[str, int]:
        """`cgroup.events`: `populated` and `frozen`, 0 or 1."""
        return read_keyed(self.path / "cgroup.events")

    def is_populated(self) -> bool:
        """True while any process is in the group (False once the group is gone)."""
        try:
            return self.events().get("populated", 0) == 1
        except FileNotFoundError:
            return False

    def pids(self) -> list[int]:
        """Host PIDs of the group's processes."""
        return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]

    async def freeze(self, timeout_s: float = 2.0) -> None:
        """Freeze the group and wait until the kernel says every task is frozen."""
        self.fs.write(self.path / "cgroup.freeze", "1")
        await wait_until(lambda: self.events().get("frozen") == 1, timeout_s, "frozen 1")

    async def thaw(self, timeout_s: float = 2.0) -> None:
        """Thaw the group and wait until `cgroup.events` says `frozen 0`."""
        self.fs.write(self.path / "cgroup.freeze", "0")
        await wait_until(lambda: self.events().get("frozen") == 0, timeout_s, "frozen 0")

    def kill(self) -> None:
        """SIGKILL every process of the group, frozen or not. No-op if the group is gone."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.write(self.path / "cgroup.kill", "1")

    async def wait_empty(self, timeout_s: float = 5.0) -> None:
        """Wait until no process is left (`populated 0`)."""
        await wait_until(lambda: not self.is_populated(), timeout_s, "populated 0")


class ControlledThroughV2Group:
    """What both box cgroup sets do the same way, through one cgroup2 group (`_v2`): list
    processes, read events, freeze, thaw and kill. Subclasses set `_v2` in __init__."""

    _v2: V2Group

    def events(self) -> dict[str, int]:
        """`cgroup.events`: `populated` and `frozen`, 0 or 1."""
        return self._v2.events()

    def is_populated(self) -> bool:
        """True while any process is in the group (False once the group is gone)."""
        return self._v2.is_populated()

    def pids(self) -> list[int]:
        """Host PIDs of the box's processes."""
        return self._v2.pids()

    async def freeze(self, timeout_s: float = 2.0) -> None:
        """Freeze the group and wait until the kernel says every task is frozen."""
        await self._v2.freeze(timeout_s)

    async def thaw(self, timeout_s: float = 2.0) -> None:
        """Thaw the group and wait until `cgroup.events` says `frozen 0`."""
        await self._v2.thaw(timeout_s)

    def kill(self) -> None:
        """SIGKILL every process of the group, frozen or not. No-op if the group is gone."""
        self._v2.kill()

    async def wait_empty(self, timeout_s: float = 5.0) -> None:
        """Wait until no process is left (`populated 0`)."""
        await self._v2.wait_empty(timeout_s)
