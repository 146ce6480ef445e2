"""Where boxes keep their things on the host, under which names, and which sandbox ids
are safe as names."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

# Mount points of full boxes' disks: a root-owned runtime dir every uid may walk through
# (0711), unlike a data dir that is often 0700 or under /root. See `disk`.
RUNTIME_ROOT = Path("/run/sandboxd")
_SANDBOX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_sandbox_id(sandbox_id: str) -> None:
    """ValueError unless the id is safe as a file name and a cgroup name."""
    if not _SANDBOX_ID.match(sandbox_id):
        raise ValueError(f"sandbox id {sandbox_id!r} is not [A-Za-z0-9_.-]{{1,128}}")


def new_box_name() -> str:
    """A fresh name for a box's host-side directories, mount point and cgroups: 128
    random bits in hex, unrelated to its sandbox id. Every host user may read
    /proc/mounts, loop devices' backing files and cgroup trees; what they show must not
    name a box another user could then address."""
    return secrets.token_hex(16)


def default_mounts_dir(cgroup_parent: str) -> Path:
    """`/run/sandboxd/<cgroup parent>`: one per sandboxd, as its cgroups are."""
    return RUNTIME_ROOT / cgroup_parent.strip("/")
