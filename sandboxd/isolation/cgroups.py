"""A sandbox's cgroups on a hybrid host.

Limits and usage come from the v1 hierarchies (`memory`, `cpu`, `cpuacct`, `pids`); pause
and kill come from a v2 group under the unified mount, whose `cgroup.freeze` stops a group
without the v1 freezer's flaw (a v1-frozen task ignores SIGKILL until thawed) and whose
`cgroup.kill` kills a group even while it is frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sandboxd.isolation.polling import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
UNIFIED = "unified"
CFS_PERIOD_US = 100_000
# A file each box group must have for the set to work; checked by `cgroups_available`.
_REQUIRED_FILES = (
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.oom_control"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpuacct", "cpuacct.usage"),
    ("pids", "pids.max"),
    (UNIFIED, "cgroup.freeze"),
    (UNIFIED, "cgroup.kill"),
)
# The shim that joins its own PID to every group, then execs: the box's first process is
# inside its cgroups before it runs anything, without a preexec_fn in a threaded server.
_JOIN_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
    'n=$((n - 1)); done; exec "$@"'
)


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


def join_shim_argv(procs_files: list[Path], argv: list[str]) -> list[str]:
    """argv that writes its own PID into each `cgroup.procs` file, then execs `argv`."""
    files = [str(p) for p in procs_files]
    return ["/bin/sh", "-c", _JOIN_SCRIPT, "sandboxd-join", str(len(files)), *files, *argv]


class CgroupSet:
    """The cgroups of one box: `<root>/<hierarchy>/<parent>/<name>` for each hierarchy."""

    def __init__(self, name: str, parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> None:
        self.name = name
        self.parent = parent.strip("/")
        self.dirs = {h: root / h / self.parent / name for h in (*V1_CONTROLLERS, UNIFIED)}

    @property
    def memcg_path(self) -> str:
        """The memory cgroup as the kernel names it in OOM messages: `/<parent>/<name>`."""
        return f"/{self.parent}/{self.name}"

    def create(self, limits: CgroupLimits) -> None:
        """Make every group and set its limits; on failure remove what this call made.
        FileExistsError when a group of that name is already there (a leftover)."""
        made: list[Path] = []
        try:
            for path in self._unique_dirs():
                path.mkdir(parents=True, exist_ok=False)
                made.append(path)
            self._set_limits(limits)
        except BaseException:
            for path in made:
                self._try_rmdir(path)
            raise

    def _set_limits(self, limits: CgroupLimits) -> None:
        write_cgroup_file(self.dirs["memory"] / "memory.limit_in_bytes", str(limits.memory_bytes))
        write_cgroup_file(self.dirs["cpu"] / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        quota_us = max(1, limits.cpu_count) * CFS_PERIOD_US
        write_cgroup_file(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota_us))
        write_cgroup_file(self.dirs["pids"] / "pids.max", str(limits.max_pids))

    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` files a launch shim writes its PID into, one per hierarchy."""
        return [path / "cgroup.procs" for path in self._unique_dirs()]

    def exists(self) -> bool:
        """True while any of the groups is still there."""
        return any(path.is_dir() for path in self.dirs.values())

    def events(self) -> dict[str, int]:
        """The v2 `cgroup.events`: `populated` and `frozen`, 0 or 1."""
        return read_keyed(self.dirs[UNIFIED] / "cgroup.events")

    def is_populated(self) -> bool:
        """True while any process is in the group (or the group cannot be read)."""
        try:
            return self.events().get("populated", 0) == 1
        except FileNotFoundError:
            return False

    def pids(self) -> list[int]:
        """Host PIDs of the box's processes, from the v2 group."""
        text = (self.dirs[UNIFIED] / "cgroup.procs").read_text()
        return [int(line) for line in text.split()]

    async def freeze(self, timeout_s: float = 2.0) -> None:
        """Freeze the group and wait until the kernel says every task is frozen."""
        write_cgroup_file(self.dirs[UNIFIED] / "cgroup.freeze", "1")
        await wait_until(lambda: self.events().get("frozen") == 1, timeout_s, "frozen 1")

    async def thaw(self, timeout_s: float = 2.0) -> None:
        """Thaw the group and wait until `cgroup.events` says `frozen 0`."""
        write_cgroup_file(self.dirs[UNIFIED] / "cgroup.freeze", "0")
        await wait_until(lambda: self.events().get("frozen") == 0, timeout_s, "frozen 0")

    def kill(self) -> None:
        """SIGKILL every process of the group, frozen or not. No-op if the group is gone."""
        with contextlib.suppress(FileNotFoundError):
            write_cgroup_file(self.dirs[UNIFIED] / "cgroup.kill", "1")

    async def wait_empty(self, timeout_s: float = 5.0) -> None:
        """Wait until no process is left (`populated 0`)."""
        await wait_until(lambda: not self.is_populated(), timeout_s, "populated 0")

    async def remove(self, timeout_s: float = 5.0) -> None:
        """rmdir every group, retrying while the kernel says EBUSY (tasks still exiting)."""
        deadline = time.monotonic() + timeout_s
        for path in self._unique_dirs():
            while not self._try_rmdir(path):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"cgroup {path} still busy after {timeout_s} s")
                await asyncio.sleep(0.01)

    def usage(self) -> CgroupUsage:
        """Read CPU, memory and process counts now (OSError if the groups are gone)."""
        mem = self.dirs["memory"]
        stat = read_keyed(mem / "memory.stat")
        usage_bytes = read_int(mem / "memory.usage_in_bytes")
        working_set = max(0, usage_bytes - stat.get("total_inactive_file", 0))
        return CgroupUsage(
            cpu_ns=read_int(self.dirs["cpuacct"] / "cpuacct.usage"),
            mem_working_set_bytes=working_set,
            mem_cache_bytes=stat.get("total_cache", 0),
            mem_limit_bytes=read_int(mem / "memory.limit_in_bytes"),
            oom_kills=self.oom_kill_count(),
            pids=read_int(self.dirs["pids"] / "pids.current"),
        )

    def oom_kill_count(self) -> int:
        """The kernel's count of OOM kills in this memory cgroup."""
        return read_keyed(self.dirs["memory"] / "memory.oom_control").get("oom_kill", 0)

    def _unique_dirs(self) -> list[Path]:
        # Where cpu and cpuacct are co-mounted (cpu -> cpu,cpuacct), both names are one group.
        seen: set[str] = set()
        out: list[Path] = []
        for path in self.dirs.values():
            key = os.path.realpath(path.parent) + "/" + path.name
            if key not in seen:
                seen.add(key)
                out.append(path)
        return out

    def _rmdir_all(self) -> None:
        for path in self._unique_dirs():
            self._try_rmdir(path)

    @staticmethod
    def _try_rmdir(path: Path) -> bool:
        """True when `path` is gone; False while the kernel says it is busy."""
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return False
            raise
        return True


def cgroups_available(parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> tuple[bool, str]:
    """Whether `CgroupSet` works here: every hierarchy mounted and writable, with the
    files it needs, including v2 `cgroup.freeze` and `cgroup.kill` (Linux >= 5.14).
    Makes and removes a probe group. Returns (ok, reason)."""
    if os.geteuid() != 0:
        return False, "not running as root: cgroups cannot be created"
    for hierarchy in (*V1_CONTROLLERS, UNIFIED):
        if not (root / hierarchy / "cgroup.procs").exists():
            return False, f"no cgroup hierarchy mounted at {root / hierarchy}"
    probe = CgroupSet(f"probe-{os.getpid()}", parent, root)
    try:
        probe.create(CgroupLimits(memory_bytes=64 << 20, cpu_count=1, max_pids=8))
        for hierarchy, name in _REQUIRED_FILES:
            if not (probe.dirs[hierarchy] / name).exists():
                return False, f"cgroup {hierarchy} has no {name} (v2 needs Linux >= 5.14)"
    except OSError as exc:
        return False, f"cannot create cgroups under {parent!r}: {exc}"
    finally:
        probe._rmdir_all()
    return True, "cgroups v1 (memory, cpu, cpuacct, pids) and v2 (freeze, kill) work"


def remove_empty_parent(parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> None:
    """rmdir `parent` in every hierarchy where it is empty (best effort: a parent still
    holding boxes, or one sandboxd never made, stays)."""
    for hierarchy in (*V1_CONTROLLERS, UNIFIED):
        with contextlib.suppress(OSError):
            (root / hierarchy / parent.strip("/")).rmdir()


def find_leftover_cgroups(parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> list[str]:
    """Names of the box groups under `parent` in any hierarchy, sorted."""
    names: set[str] = set()
    for hierarchy in (*V1_CONTROLLERS, UNIFIED):
        base = root / hierarchy / parent.strip("/")
        if base.is_dir():
            names.update(entry.name for entry in base.iterdir() if entry.is_dir())
    return sorted(names)
