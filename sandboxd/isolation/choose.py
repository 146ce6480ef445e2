"""Pick the isolation level this machine supports, and say why."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sandboxd.isolation.base import Isolation
from sandboxd.isolation.bwrap import bwrap_works, searchable_by_others, setpriv_argv
from sandboxd.isolation.cgroups import cgroups_available
from sandboxd.isolation.disk import loop_disk_works
from sandboxd.isolation.full import FullIsolation
from sandboxd.isolation.paths import RUNTIME_ROOT, default_mounts_dir
from sandboxd.isolation.reduced import (
    ReducedIsolation,
    UnprivilegedBoxesUnavailable,
    reduced_blockers,
    uid_range_blocker,
)
from sandboxd.isolation.seccomp import seccomp_available
from sandboxd.isolation.uids import HOST_ID_RANGE_COUNT, HostUidPool
from sandboxd.isolation.userns import BOX_ID_COUNT

log = logging.getLogger(__name__)


def full_blockers(data_dir: Path, cgroup_parent: str, host_uid_base: int) -> list[str]:
    """Why "full" cannot work here; empty when it can. Runs a few probes (~50 ms)."""
    if os.geteuid() != 0:
        return ["sandboxd is not running as root"]
    probe = f"probe-{os.getpid()}"
    mounts_dir = default_mounts_dir(cgroup_parent)
    blockers = []
    for ok, reason in (
        cgroups_available(cgroup_parent),
        bwrap_works(setpriv_argv(host_uid_base)),
        seccomp_available(),
        loop_disk_works(data_dir / "boxes" / probe, mounts_dir / probe),
        searchable_by_others(mounts_dir),
    ):
        if not ok:
            blockers.append(reason)
    # Full boxes take 65,536 ids each: the whole span must be free of accounts.
    taken = uid_range_blocker(host_uid_base, HOST_ID_RANGE_COUNT * BOX_ID_COUNT)
    if taken is not None:
        blockers.append(taken)
    return blockers


def shared_user_blocker(root: bool, bwrap_ok: bool, allow_shared_user: bool) -> str | None:
    """Why plain boxes may not run here, or None. Without root and without bwrap, box code
    would run as sandboxd's own user, outside any namespace: it could read the data dir
    (the API key, then drive every other box through the API) and signal sandboxd. That
    takes the operator's explicit consent (docs/SECURITY.md, "Isolation levels")."""
    if root or bwrap_ok or allow_shared_user:
        return None
    return (
        "sandboxd is not root and bwrap cannot make a user namespace here, so box code "
        "would run as sandboxd's own user and could read its API key and store. Run "
        "sandboxd as root, allow unprivileged user namespaces for bwrap, or set "
        "SANDBOXD_ALLOW_SHARED_USER=1 on a machine where that is acceptable"
    )


def choose_isolation(
    data_dir: Path,
    cgroup_parent: str,
    host_uid_base: int,
    force_reduced: bool,
    allow_shared_user: bool = False,
    box_internet: bool = True,
) -> Isolation:
    """FullIsolation when root, cgroups, bwrap, seccomp and loop-mounted ext4 all work,
    else ReducedIsolation (with bwrap if it works as the box's uid), whose `limitations`
    start with the reasons. The choice and its reasons are logged. `box_internet` False
    keeps full boxes off the network (reduced boxes have none of their own to give).
    UnprivilegedBoxesUnavailable when reduced boxes could not run unprivileged here, or
    would run as sandboxd's own user without `allow_shared_user`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    taken = uid_range_blocker(host_uid_base) if os.geteuid() == 0 else None
    if taken is not None:  # full and reduced boxes alike would share an account's uid
        raise UnprivilegedBoxesUnavailable(f"boxes cannot have uids of their own: {taken}")
    if force_reduced:
        reasons = ["forced by a setting"]
    else:
        reasons = full_blockers(data_dir, cgroup_parent, host_uid_base)
        if not reasons:
            log.info("isolation: full (cgroups, loop ext4, bwrap, seccomp)")
            return FullIsolation(data_dir, cgroup_parent, host_uid_base, box_internet=box_internet)
    # Box code never runs as host root: as root, each box gets a uid of its own; when
    # that (or, unprivileged, a process limit) cannot be had, sandboxd does not start.
    blockers = reduced_blockers(host_uid_base)
    if blockers:
        raise UnprivilegedBoxesUnavailable(
            "reduced isolation cannot run boxes unprivileged: " + "; ".join(blockers)
        )
    root = os.geteuid() == 0
    bwrap_ok, bwrap_reason = bwrap_works(setpriv_argv(host_uid_base) if root else ())
    if not bwrap_ok:
        reasons.append(bwrap_reason)
    shared = shared_user_blocker(root, bwrap_ok, allow_shared_user)
    if shared is not None:
        raise UnprivilegedBoxesUnavailable(f"{shared} ({bwrap_reason})")
    seccomp_ok, _ = seccomp_available()
    iso = ReducedIsolation(
        data_dir, use_bwrap=bwrap_ok, reasons=reasons, use_seccomp=seccomp_ok,
        host_uids=HostUidPool(host_uid_base) if root else None,
        runtime_dir=RUNTIME_ROOT / "reduced" / cgroup_parent.strip("/"),
    )  # fmt: skip
    log.warning("isolation: reduced; %s", "; ".join(iso.limitations))
    return iso
