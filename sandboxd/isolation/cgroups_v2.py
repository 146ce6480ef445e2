"""A box's cgroup on a cgroup v2 host (one unified hierarchy, as on current Debian, Ubuntu
and Fedora): one group `<v2 root>/<parent>/<name>` holds the limits, the usage, the OOM
counter, pause and kill.

    limits   memory.max, memory.swap.max = 0 (where swap is accounted), memory.oom.group
             = 0, cpu.max "<quota> <period>", pids.max
    usage    memory.current minus memory.stat `inactive_file` (working set), memory.stat
             `file` (cache), cpu.stat `usage_usec`, pids.current
    OOM      memory.events `oom_kill` (processes killed; a group kill adds one per process,
             and `oom_group_kill` counts the group events, so the two are never added)
    control  cgroup.freeze, cgroup.events, cgroup.kill (Linux >= 5.14)

A controller reaches a group only when every ancestor down to the parent lists it in its
`cgroup.subtree_control`, so `enable_controllers` writes it there level by level; the
"no internal processes" rule means a level that holds processes (other than the root)
cannot pass controllers on, so sandboxd's parent never holds a process itself.

Where this was shown. The development machine is hybrid, its memory, cpu and pids bound
to v1, so its cgroup2 mount offers none of them. On that real mount: groups made and
removed, subtree_control enabled level by level (with hugetlb, the one it offers) and
refused (EBUSY) for a level holding a process, the join shim, freeze, thaw, kill while
frozen, cgroup.events, cpu.stat `usage_usec`, and the refusal with a reason where memory,
cpu and pids are missing (test_cgroups_v2_real.py). Everything else against a fake
cgroupfs that writes the kernel's formats (test_cgroups_v2.py). Once, by hand, in a VM
booting Debian's 6.1 kernel with cgroup2 alone at /sys/fs/cgroup (no systemd; QEMU
without KVM, the host's files over 9p): the layout found as v2, the probe passing, a box
set with its limits, and tests/sandboxd/isolation's full-isolation tests (limits, OOM
kill seen in kmsg as `oom_memcg=/<parent>/<name>` and counted, freeze, kill, cleanup)
passing. NOT shown: a v2 host run by systemd (whether enabling memory, cpu and pids at the
root beside its own slices, and a top-level parent, go without friction), a v2 host in a
container (the cgroup namespace's root holds processes, so enabling fails with EBUSY and
sandboxd says so), and memory.oom.group kills, which no test made happen.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from sandboxd.isolation.cgroups_common import (
    CGROUP_ROOT,
    CPU_PERIOD_US,
    KERNEL_FS,
    CgroupFs,
    CgroupLimits,
    CgroupUsage,
    ControlledThroughV2Group,
    V2Group,
    read_int,
    read_keyed,
    remove_groups,
    try_rmdir,
)

V2_CONTROLLERS = ("memory", "cpu", "pids")
# Files each box group must have for the set to work; checked by `v2_available`.
_REQUIRED_FILES = (
    "memory.max",
    "memory.current",
    "memory.stat",
    "memory.events",
    "cpu.max",
    "cpu.stat",
    "pids.max",
    "pids.current",
    "cgroup.events",
    "cgroup.freeze",
    "cgroup.kill",
)


def offered_controllers(v2_root: Path) -> list[str]:
    """The controllers a cgroup2 mount offers (its root's `cgroup.controllers`)."""
    return (v2_root / "cgroup.controllers").read_text().split()


def enable_controllers(
    v2_root: Path,
    parent: str,
    controllers: tuple[str, ...] = V2_CONTROLLERS,
    fs: CgroupFs = KERNEL_FS,
) -> None:
    """Make `parent` (and any missing level above it) under `v2_root`, and enable
    `controllers` in the `cgroup.subtree_control` of the root and of every level down to
    `parent`, so a group made in `parent` has their files. Writes only what is missing.
    OSError ENOENT when a level does not offer one; EBUSY when a level below the root
    holds processes (v2's "no internal processes" rule)."""
    level = v2_root
    for part in [*Path(parent.strip("/")).parts, None]:
        control = level / "cgroup.subtree_control"
        enabled = control.read_text().split()
        missing = [name for name in controllers if name not in enabled]
        if missing:
            _write_subtree_control(fs, control, missing)
        if part is None:
            return
        level = level / part
        with contextlib.suppress(FileExistsError):
            fs.mkdir(level)


def _write_subtree_control(fs: CgroupFs, control: Path, missing: list[str]) -> None:
    try:
        fs.write(control, " ".join(f"+{name}" for name in missing))
    except OSError as exc:
        level = control.parent
        if exc.errno == errno.EBUSY:
            why = "it holds processes (cgroup v2 lets only a group without processes "
            why += "pass controllers to its children)"
        elif exc.errno == errno.ENOENT:
            offered = (level / "cgroup.controllers").read_text().split()
            why = f"it is not offered them (cgroup.controllers: {' '.join(offered) or 'none'})"
        else:
            raise
        raise OSError(exc.errno, f"cannot enable {', '.join(missing)} in {level}: {why}") from exc


class V2CgroupSet(ControlledThroughV2Group):
    """The cgroup of one box on a cgroup v2 host: `<v2_root>/<parent>/<name>`."""

    def __init__(
        self,
        name: str,
        parent: str = "sandboxd",
        v2_root: Path = CGROUP_ROOT,
        fs: CgroupFs = KERNEL_FS,
    ) -> None:
        self.name = name
        self.parent = parent.strip("/")
        self.v2_root = v2_root
        self.path = v2_root / self.parent / name
        self.fs = fs
        self._v2 = V2Group(self.path, fs)

    @property
    def memcg_path(self) -> str:
        """The group as the kernel names it in OOM messages: `/<parent>/<name>`."""
        return f"/{self.parent}/{self.name}"

    def create(self, limits: CgroupLimits) -> None:
        """Enable the controllers down to the parent, make the group and set its limits;
        on failure remove the group if this call made it. FileExistsError when a group of
        that name is already there (a leftover)."""
        enable_controllers(self.v2_root, self.parent, V2_CONTROLLERS, self.fs)
        self.fs.mkdir(self.path)
        try:
            self._set_limits(limits)
        except BaseException:
            try_rmdir(self.path, self.fs)
            raise

    def _set_limits(self, limits: CgroupLimits) -> None:
        write = self.fs.write
        write(self.path / "memory.max", str(limits.memory_bytes))
        # No swap: a box is OOM-killed at its limit, as on v1 without swap and as in E2B's
        # VMs, instead of paging the host's disk. Absent where swap is not accounted.
        if (self.path / "memory.swap.max").exists():
            write(self.path / "memory.swap.max", "0")
        # An OOM kills the one process the kernel picks, not the whole box with its agent
        # (the v1 behaviour, and E2B's). 0 is the default; written so a changed default or
        # an operator's template cannot turn a process's OOM into the box's death.
        if (self.path / "memory.oom.group").exists():
            write(self.path / "memory.oom.group", "0")
        quota_us = max(1, limits.cpu_count) * CPU_PERIOD_US
        write(self.path / "cpu.max", f"{quota_us} {CPU_PERIOD_US}")
        write(self.path / "pids.max", str(limits.max_pids))

    def procs_files(self) -> list[Path]:
        """The one `cgroup.procs` file a launch shim writes its PID into."""
        return [self.path / "cgroup.procs"]

    def exists(self) -> bool:
        """True while the group is there."""
        return self.path.is_dir()

    async def remove(self, timeout_s: float = 5.0) -> None:
        """rmdir the group, retrying while the kernel says EBUSY (tasks still exiting)."""
        await remove_groups([self.path], timeout_s, self.fs)

    def usage(self) -> CgroupUsage:
        """Read CPU, memory and process counts now (OSError if the group is gone)."""
        stat = read_keyed(self.path / "memory.stat")
        current_bytes = read_int(self.path / "memory.current")
        return CgroupUsage(
            cpu_ns=cpu_usage_ns(self.path),
            mem_working_set_bytes=max(0, current_bytes - stat.get("inactive_file", 0)),
            mem_cache_bytes=stat.get("file", 0),
            mem_limit_bytes=read_int(self.path / "memory.max"),
            oom_kills=self.oom_kill_count(),
            pids=read_int(self.path / "pids.current"),
        )

    def oom_kill_count(self) -> int:
        """memory.events `oom_kill`: processes OOM-killed in the group and below it."""
        return read_keyed(self.path / "memory.events").get("oom_kill", 0)

    def discard(self) -> None:
        """rmdir the group now, best effort (a probe that holds no process)."""
        with contextlib.suppress(OSError):
            try_rmdir(self.path, self.fs)


def cpu_usage_ns(group: Path) -> int:
    """Cumulative CPU time of a v2 group in ns, from cpu.stat `usage_usec` (present in
    every group, with or without the cpu controller)."""
    return read_keyed(group / "cpu.stat")["usage_usec"] * 1000


def v2_available(
    parent: str, v2_root: Path = CGROUP_ROOT, fs: CgroupFs = KERNEL_FS
) -> tuple[bool, str]:
    """Whether `V2CgroupSet` works under `v2_root`: memory, cpu and pids offered, enabled
    down to `parent`, and a probe group has every file the set needs. Makes and removes
    the probe (the parent stays, with the controllers enabled). Returns (ok, reason)."""
    try:
        offered = offered_controllers(v2_root)
    except OSError as exc:
        return False, f"no cgroup v2 at {v2_root}: {exc}"
    if missing := [name for name in V2_CONTROLLERS if name not in offered]:
        return False, (
            f"cgroup v2 at {v2_root} does not offer {', '.join(missing)} "
            "(bound to a cgroup v1 hierarchy, or not delegated here)"
        )
    probe = V2CgroupSet(f"probe-{os.getpid()}", parent, v2_root, fs)
    try:
        probe.create(CgroupLimits(memory_bytes=64 << 20, cpu_count=1, max_pids=8))
        for name in _REQUIRED_FILES:
            if not (probe.path / name).exists():
                kernel = " (needs Linux >= 5.14)" if name == "cgroup.kill" else ""
                return False, f"a cgroup v2 group has no {name}{kernel}"
    except OSError as exc:
        return False, f"cannot create cgroups under {parent!r} in {v2_root}: {exc}"
    finally:
        probe.discard()
    return True, f"cgroup v2 at {v2_root} (memory, cpu, pids, freeze, kill) works"


def v2_remove_empty_parent(
    parent: str, v2_root: Path = CGROUP_ROOT, fs: CgroupFs = KERNEL_FS
) -> None:
    """rmdir `parent` if it holds no group (best effort)."""
    with contextlib.suppress(OSError):
        fs.rmdir(v2_root / parent.strip("/"))


def v2_leftovers(parent: str, v2_root: Path = CGROUP_ROOT) -> list[str]:
    """Names of the box groups under `parent`, sorted."""
    base = v2_root / parent.strip("/")
    if not base.is_dir():
        return []
    return sorted(entry.name for entry in base.iterdir() if entry.is_dir())
