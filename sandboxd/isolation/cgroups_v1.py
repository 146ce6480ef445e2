"""A box's cgroups on a hybrid host (cgroup v1 controllers beside a cgroup2 mount).

Limits and usage come from the v1 hierarchies (`memory`, `cpu`, `cpuacct`, `pids`); pause
and kill come from a group under the unified (cgroup2) mount, see `V2Group`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sandboxd.isolation.cgroups_common import (
    CGROUP_ROOT,
    CPU_PERIOD_US,
    CgroupLimits,
    CgroupUsage,
    ControlledThroughV2Group,
    V2Group,
    read_int,
    read_keyed,
    remove_groups,
    try_rmdir,
    write_cgroup_file,
)

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
UNIFIED = "unified"
CFS_PERIOD_US = CPU_PERIOD_US
HYBRID_HIERARCHIES = (*V1_CONTROLLERS, UNIFIED)
# A file each box group must have for the set to work; checked by `hybrid_available`.
_REQUIRED_FILES = (
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.oom_control"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpuacct", "cpuacct.usage"),
    ("pids", "pids.max"),
    (UNIFIED, "cgroup.freeze"),
    (UNIFIED, "cgroup.kill"),
)


def hybrid_mounted(root: Path = CGROUP_ROOT) -> list[Path]:
    """The hierarchies this backend needs that are not mounted under `root` (empty when
    every one is)."""
    return [root / h for h in HYBRID_HIERARCHIES if not (root / h / "cgroup.procs").exists()]


class HybridCgroupSet(ControlledThroughV2Group):
    """The cgroups of one box: `<root>/<hierarchy>/<parent>/<name>` for each hierarchy."""

    def __init__(self, name: str, parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> None:
        self.name = name
        self.parent = parent.strip("/")
        self.dirs = {h: root / h / self.parent / name for h in HYBRID_HIERARCHIES}
        self._v2 = V2Group(self.dirs[UNIFIED])

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
                try_rmdir(path)
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

    async def remove(self, timeout_s: float = 5.0) -> None:
        """rmdir every group, retrying while the kernel says EBUSY (tasks still exiting)."""
        await remove_groups(self._unique_dirs(), timeout_s)

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

    def discard(self) -> None:
        """rmdir every group now, best effort (a probe that holds no process)."""
        for path in self._unique_dirs():
            try_rmdir(path)


def hybrid_available(parent: str, root: Path = CGROUP_ROOT) -> tuple[bool, str]:
    """Whether `HybridCgroupSet` works under `root`: every hierarchy mounted and
    writable, with the files it needs, including v2 `cgroup.freeze` and `cgroup.kill`
    (Linux >= 5.14). Makes and removes a probe group. Returns (ok, reason)."""
    if missing := hybrid_mounted(root):
        return False, f"no cgroup hierarchy mounted at {missing[0]}"
    probe = HybridCgroupSet(f"probe-{os.getpid()}", parent, root)
    try:
        probe.create(CgroupLimits(memory_bytes=64 << 20, cpu_count=1, max_pids=8))
        for hierarchy, name in _REQUIRED_FILES:
            if not (probe.dirs[hierarchy] / name).exists():
                return False, f"cgroup {hierarchy} has no {name} (v2 needs Linux >= 5.14)"
    except OSError as exc:
        return False, f"cannot create cgroups under {parent!r}: {exc}"
    finally:
        probe.discard()
    return True, "cgroups v1 (memory, cpu, cpuacct, pids) and v2 (freeze, kill) work"


def hybrid_remove_empty_parent(parent: str, root: Path = CGROUP_ROOT) -> None:
    """rmdir `parent` in every hierarchy where it is empty (best effort)."""
    for hierarchy in HYBRID_HIERARCHIES:
        with contextlib.suppress(OSError):
            (root / hierarchy / parent.strip("/")).rmdir()


def hybrid_leftovers(parent: str, root: Path = CGROUP_ROOT) -> list[str]:
    """Names of the box groups under `parent` in any hierarchy, sorted."""
    names: set[str] = set()
    for hierarchy in HYBRID_HIERARCHIES:
        base = root / hierarchy / parent.strip("/")
        if base.is_dir():
            names.update(entry.name for entry in base.iterdir() if entry.is_dir())
    return sorted(names)
