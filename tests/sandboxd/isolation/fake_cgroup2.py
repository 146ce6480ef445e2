"""A fake cgroup2 mount in a tmp dir, for testing the v2 backend on a host without one.

`FakeCgroup2` is a `CgroupFs`: a group made through it gets the interface files the
kernel would make (a controller's files only when the parent enables it in
`cgroup.subtree_control`), and writes through it change the files as the kernel would
(subtree_control checks what is offered and the no-internal-processes rule, cgroup.freeze
and cgroup.kill update cgroup.events, limits are validated and stored in the kernel's
format). Every write is recorded in `writes`. The formats follow the kernel's cgroup-v2
documentation (Documentation/admin-guide/cgroup-v2.rst).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

PAGE_BYTES = 4096
ALL_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
_CORE_FILES = {
    "cgroup.procs": "",
    "cgroup.threads": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "cgroup.kill": "",
    "cgroup.subtree_control": "\n",
    "cgroup.type": "domain\n",
    # Every v2 group has these core cpu.stat fields, with or without the cpu controller.
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}
_MEMORY_STAT_KEYS = (
    "anon", "file", "kernel", "kernel_stack", "pagetables", "sock", "shmem", "file_mapped",
    "file_dirty", "file_writeback", "anon_thp", "inactive_anon", "active_anon",
    "inactive_file", "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable",
    "pgfault", "pgmajfault",
)  # fmt: skip
_CONTROLLER_FILES = {
    "memory": {
        "memory.current": "0\n",
        "memory.min": "0\n",
        "memory.low": "0\n",
        "memory.high": "max\n",
        "memory.max": "max\n",
        "memory.oom.group": "0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        "memory.events.local": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        "memory.stat": "".join(f"{key} 0\n" for key in _MEMORY_STAT_KEYS),
    },
    "memory+swap": {
        "memory.swap.current": "0\n",
        "memory.swap.max": "max\n",
        "memory.swap.events": "high 0\nmax 0\nfail 0\n",
    },
    "cpu": {
        "cpu.max": "max 100000\n",
        "cpu.weight": "100\n",
        "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\n"
        "nr_throttled 0\nthrottled_usec 0\n",
    },
    "pids": {"pids.current": "0\n", "pids.max": "max\n", "pids.events": "max 0\n"},
}


class FakeCgroup2:
    """A cgroup2 mount at `root` offering `controllers`; `swap` says whether swap is
    accounted (memory.swap.* files). Set `busy_rmdirs` to answer that many rmdirs EBUSY,
    as the kernel does while a killed group's tasks exit."""

    def __init__(
        self, root: Path, controllers: tuple[str, ...] = ALL_CONTROLLERS, swap: bool = True
    ) -> None:
        self.root = root
        self.swap = swap
        self.writes: list[tuple[str, str]] = []
        self.rmdir_calls = 0
        self.busy_rmdirs = 0
        root.mkdir(parents=True, exist_ok=True)
        for name, text in _CORE_FILES.items():
            (root / name).write_text(text)
        (root / "cgroup.controllers").write_text(" ".join(controllers) + "\n")
        (root / "cgroup.procs").write_text("1\n")  # the root may hold processes

    def rel(self, path: Path) -> str:
        """`path` as the kernel names the group or file: `/parent/name/file`."""
        return "/" + str(path.relative_to(self.root))

    # --- the CgroupFs seam --------------------------------------------------------------

    def mkdir(self, path: Path) -> None:
        """Make a group with the files its parent's subtree_control gives it."""
        path.mkdir()  # FileExistsError / FileNotFoundError as mkdir(2)
        for name, text in _CORE_FILES.items():
            (path / name).write_text(text)
        self._give_controllers(path)

    def _give_controllers(self, group: Path) -> None:
        """The controllers the parent enables appear in `group`, with their files."""
        offered = (group.parent / "cgroup.subtree_control").read_text().split()
        (group / "cgroup.controllers").write_text(" ".join(offered) + "\n")
        files = [_CONTROLLER_FILES.get(controller, {}) for controller in offered]
        if "memory" in offered and self.swap:
            files.append(_CONTROLLER_FILES["memory+swap"])
        for name, text in (item for group_files in files for item in group_files.items()):
            if not (group / name).exists() or name == "cpu.stat":
                (group / name).write_text(text)

    def rmdir(self, path: Path) -> None:
        """Remove an empty group; EBUSY while it has tasks or children."""
        self.rmdir_calls += 1
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        busy = self.busy_rmdirs > 0 or self.procs(path)
        if busy or any(entry.is_dir() for entry in path.iterdir()):
            self.busy_rmdirs = max(0, self.busy_rmdirs - 1)
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        shutil.rmtree(path)

    def write(self, path: Path, value: str) -> None:
        """Write an interface file as the kernel would take it."""
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        self.writes.append((self.rel(path), value))
        group, name = path.parent, path.name
        if name == "cgroup.subtree_control":
            self._write_subtree_control(group, value)
        elif name == "cgroup.freeze":
            frozen = _one_of(value, ("0", "1"))
            path.write_text(f"{frozen}\n")
            self._set_event(group, "frozen", int(frozen))
        elif name == "cgroup.kill":
            _one_of(value, ("1",))
            (group / "cgroup.procs").write_text("")
            self._set_event(group, "populated", 0)
        elif name == "cgroup.procs":
            self.add_process(group, int(value))
        elif name in ("memory.max", "memory.swap.max", "memory.high"):
            limit = _max_or_int(value)  # the kernel keeps whole pages
            path.write_text(
                f"{limit if limit == 'max' else int(limit) // PAGE_BYTES * PAGE_BYTES}\n"
            )
        elif name == "pids.max":
            path.write_text(f"{_max_or_int(value)}\n")
        elif name == "memory.oom.group":
            path.write_text(f"{_one_of(value, ('0', '1'))}\n")
        elif name == "cpu.max":
            quota, _, period = value.strip().partition(" ")
            period_us = _max_or_int(period or "100000")
            path.write_text(f"{'max' if quota == 'max' else _max_or_int(quota)} {period_us}\n")
        else:
            path.write_text(value)

    # --- what the kernel would do on its own --------------------------------------------

    def procs(self, group: Path) -> list[int]:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]

    def add_process(self, group: Path, pid: int) -> None:
        """A process joins `group` (as a write of its PID to cgroup.procs does)."""
        (group / "cgroup.procs").write_text(
            "".join(f"{p}\n" for p in [*self.procs(group), pid])
        )  # fmt: skip
        self._set_event(group, "populated", 1)

    def set_file(self, group: Path, name: str, text: str) -> None:
        """The kernel updates a read-only file (usage, stat, events)."""
        (group / name).write_text(text)

    def _write_subtree_control(self, group: Path, value: str) -> None:
        offered = (group / "cgroup.controllers").read_text().split()
        enabled = (group / "cgroup.subtree_control").read_text().split()
        for token in value.split():
            sign, name = token[0], token[1:]
            if sign not in "+-" or name not in ALL_CONTROLLERS:
                raise OSError(errno.EINVAL, "Invalid argument")
            if sign == "+" and name not in offered:
                raise OSError(errno.ENOENT, "No such file or directory")
            if sign == "+" and group != self.root and self.procs(group):
                raise OSError(errno.EBUSY, "Device or resource busy")
            enabled = [c for c in enabled if c != name] + ([name] if sign == "+" else [])
        ordered = [c for c in ALL_CONTROLLERS if c in enabled]
        (group / "cgroup.subtree_control").write_text(" ".join(ordered) + "\n")
        for child in (entry for entry in group.iterdir() if entry.is_dir()):
            self._give_controllers(child)

    @staticmethod
    def _set_event(group: Path, key: str, value: int) -> None:
        events = dict(line.split() for line in (group / "cgroup.events").read_text().splitlines())
        events[key] = str(value)
        (group / "cgroup.events").write_text(
            f"populated {events['populated']}\nfrozen {events['frozen']}\n"
        )


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value.strip() not in allowed:
        raise OSError(errno.EINVAL, "Invalid argument")
    return value.strip()


def _max_or_int(value: str) -> int | str:
    text = value.strip()
    if text == "max":
        return "max"
    if not text.isdigit():
        raise OSError(errno.EINVAL, "Invalid argument")
    return int(text)


def make_hybrid_tree(root: Path) -> Path:
    """A hybrid layout's look: one dir per v1 hierarchy and an empty cgroup2 at unified."""
    for hierarchy in ("cpu", "cpuacct", "memory", "pids", "freezer", "systemd"):
        (root / hierarchy).mkdir(parents=True)
        (root / hierarchy / "cgroup.procs").write_text(f"{os.getpid()}\n")
    FakeCgroup2(root / "unified", controllers=("hugetlb",))
    return root
