"""Recovery after a crash of sandboxd at the "full" level: what a dead run left behind
(processes in cgroups, mounted disks, images) is killed, unmounted and deleted."""

from __future__ import annotations

import logging
import os
from collections.abc import Container
from pathlib import Path

from sandboxd.isolation.cgroups import CgroupLayout, find_leftover_cgroups, new_cgroup_set
from sandboxd.isolation.disk import LoopDisk, find_leftover_mounts

log = logging.getLogger(__name__)


async def remove_leftover_cgroups(
    parent: str, live: Container[str], layout: CgroupLayout | None = None
) -> list[str]:
    """Kill every process in, then remove, the box groups under `parent` not in `live`
    (`layout` detected at /sys/fs/cgroup when None)."""
    done = []
    for name in find_leftover_cgroups(parent, layout):
        if name not in live:
            cgroups = new_cgroup_set(name, parent, layout)
            cgroups.kill()
            await cgroups.wait_empty()
            await cgroups.remove()
            done.append(f"removed cgroups {parent}/{name}")
    return done


async def remove_leftover_disks(
    boxes_dir: Path, mounts_dir: Path, live: Container[str]
) -> list[str]:
    """Unmount and delete the disks of boxes not in `live`: mounted ones first, then
    images and mount points left without a mount."""
    done = []
    for mount in find_leftover_mounts(mounts_dir):
        if mount.parent == mounts_dir and mount.name not in live:
            await LoopDisk(boxes_dir / mount.name, mount).remove(detach=True)
            done.append(f"unmounted and deleted the disk of {mount.name}")
    names = set(_entries(boxes_dir)) | set(_entries(mounts_dir))
    for name in sorted(names):
        if name not in live and not os.path.ismount(mounts_dir / name):
            await LoopDisk(boxes_dir / name, mounts_dir / name).remove(detach=True)
            done.append(f"deleted the files of {name}")
    return done


def _entries(path: Path) -> list[str]:
    return [entry.name for entry in path.iterdir()] if path.is_dir() else []


async def cleanup_full_leftovers(
    parent: str,
    boxes_dir: Path,
    mounts_dir: Path,
    live: Container[str],
    layout: CgroupLayout | None = None,
) -> list[str]:
    """Everything above, cgroups first (their processes may hold the mounts). Returns
    what was done, one line each; each is also logged."""
    done = await remove_leftover_cgroups(parent, live, layout)
    done += await remove_leftover_disks(boxes_dir, mounts_dir, live)
    for line in done:
        log.info("cleanup: %s", line)
    return done
