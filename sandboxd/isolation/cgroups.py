"""A box's cgroups: which backend this host's layout calls for, and the calls that do not
depend on it.

    hybrid  v1 `memory`, `cpu`, `cpuacct`, `pids` hierarchies plus a cgroup2 mount at
            `<root>/unified` for freeze and kill (`cgroups_v1`)
    v2      one cgroup2 hierarchy offering memory, cpu and pids: `<root>` itself on a
            v2-only host, or `<root>/unified` on a hybrid one whose v1 hierarchies are
            not all mounted (`cgroups_v2`)
    none    neither; full isolation is refused with the reason

Both backends implement `BoxCgroups` (see `cgroups_common`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sandboxd.isolation.cgroups_common import (
    CGROUP_ROOT,
    BoxCgroups,
    CgroupLimits,
    CgroupUsage,
    join_shim_argv,
    read_int,
    read_keyed,
    write_cgroup_file,
)
from sandboxd.isolation.cgroups_v1 import (
    CFS_PERIOD_US,
    UNIFIED,
    V1_CONTROLLERS,
    HybridCgroupSet,
    hybrid_available,
    hybrid_leftovers,
    hybrid_mounted,
    hybrid_remove_empty_parent,
)
from sandboxd.isolation.cgroups_v2 import (
    V2_CONTROLLERS,
    V2CgroupSet,
    offered_controllers,
    v2_available,
    v2_leftovers,
    v2_remove_empty_parent,
)

__all__ = [
    "CFS_PERIOD_US",
    "CGROUP_ROOT",
    "UNIFIED",
    "V1_CONTROLLERS",
    "BoxCgroups",
    "CgroupLayout",
    "CgroupLimits",
    "CgroupUsage",
    "HybridCgroupSet",
    "V2CgroupSet",
    "cgroups_available",
    "detect_cgroup_layout",
    "find_leftover_cgroups",
    "join_shim_argv",
    "new_cgroup_set",
    "read_int",
    "read_keyed",
    "remove_empty_parent",
    "write_cgroup_file",
]

LayoutKind = Literal["hybrid", "v2", "none"]


@dataclass(frozen=True)
class CgroupLayout:
    """What this host's cgroups look like. `root` is the tmpfs holding one directory per
    hierarchy for "hybrid", the cgroup2 mount for "v2"; `reason` says what was found."""

    kind: LayoutKind
    root: Path
    reason: str


def detect_cgroup_layout(root: Path = CGROUP_ROOT) -> CgroupLayout:
    """The layout under `root` (normally /sys/fs/cgroup), from the files there: a cgroup2
    mount has `cgroup.controllers` in its root, a v1 or hybrid tmpfs does not."""
    if (root / "cgroup.controllers").is_file():
        return _v2_layout(root, "cgroup v2 only")
    missing = hybrid_mounted(root)
    if not missing:
        return CgroupLayout("hybrid", root, "hybrid: cgroup v1 controllers and v2 at unified")
    if (root / UNIFIED / "cgroup.controllers").is_file():
        layout = _v2_layout(root / UNIFIED, "cgroup v2 at unified")
        if layout.kind == "v2":
            return layout
    return CgroupLayout("none", root, f"no cgroup hierarchy mounted at {missing[0]}")


def _v2_layout(v2_root: Path, found: str) -> CgroupLayout:
    try:
        offered = offered_controllers(v2_root)
    except OSError as exc:
        return CgroupLayout("none", v2_root, f"cannot read {v2_root}: {exc}")
    if missing := [name for name in V2_CONTROLLERS if name not in offered]:
        why = f"{found}, but it does not offer {', '.join(missing)}"
        return CgroupLayout("none", v2_root, why)
    return CgroupLayout("v2", v2_root, f"{found} at {v2_root} (memory, cpu, pids)")


def new_cgroup_set(name: str, parent: str, layout: CgroupLayout | None = None) -> BoxCgroups:
    """The (not yet created) cgroups of box `name` under `parent`, for `layout` (detected
    at /sys/fs/cgroup when None). RuntimeError for a layout of kind "none"."""
    layout = layout or detect_cgroup_layout()
    if layout.kind == "hybrid":
        return HybridCgroupSet(name, parent, layout.root)
    if layout.kind == "v2":
        return V2CgroupSet(name, parent, layout.root)
    raise RuntimeError(f"no usable cgroups: {layout.reason}")


def cgroups_available(parent: str = "sandboxd", root: Path = CGROUP_ROOT) -> tuple[bool, str]:
    """Whether a box's cgroups work under `root` with this host's layout: makes and
    removes a probe group. Needs root. Returns (ok, reason)."""
    if os.geteuid() != 0:
        return False, "not running as root: cgroups cannot be created"
    layout = detect_cgroup_layout(root)
    if layout.kind == "hybrid":
        return hybrid_available(parent, layout.root)
    if layout.kind == "v2":
        return v2_available(parent, layout.root)
    return False, layout.reason


def remove_empty_parent(parent: str = "sandboxd", layout: CgroupLayout | None = None) -> None:
    """rmdir `parent` wherever it is empty (best effort: a parent still holding boxes,
    or one sandboxd never made, stays)."""
    layout = layout or detect_cgroup_layout()
    if layout.kind == "hybrid":
        hybrid_remove_empty_parent(parent, layout.root)
    elif layout.kind == "v2":
        v2_remove_empty_parent(parent, layout.root)


def find_leftover_cgroups(
    parent: str = "sandboxd", layout: CgroupLayout | None = None
) -> list[str]:
    """Names of the box groups under `parent`, sorted."""
    layout = layout or detect_cgroup_layout()
    if layout.kind == "hybrid":
        return hybrid_leftovers(parent, layout.root)
    if layout.kind == "v2":
        return v2_leftovers(parent, layout.root)
    return []
