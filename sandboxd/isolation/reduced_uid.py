"""Who box code runs as at the "reduced" level, and how to end everything it started.

As root, each box runs as its own unprivileged host uid (from `HostUidPool`), entered with
setpriv: RLIMIT_NPROC then counts that box's processes alone (root is exempt from it), and
host files are seen as a stranger sees them. Since nothing else runs as that uid, every
process of the uid is the box's, even one that left its process tree: `kill_uid` ends them
all at once. Without root, box code runs as sandboxd's own uid, which must hold no
capability (a box would inherit it, and CAP_SYS_RESOURCE lifts RLIMIT_NPROC).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Sequence

from sandboxd.isolation.bwrap import HELPER_ENV, SETPRIV, setpriv_argv
from sandboxd.isolation.polling import wait_until

KILL = "/usr/bin/kill"
ID = "/usr/bin/id"
PROBE_TIMEOUT_S = 10.0
# Killing a uid's processes is one kill(-1) plus the kernel tearing them down: a box of a
# few hundred processes is gone in well under a second.
KILL_UID_TIMEOUT_S = 5.0
_CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapAmb")


def uid_switch_blocker(host_uid: int) -> str | None:
    """Why root cannot run a process as `host_uid` (no groups, no capabilities) here, or
    None when it can: a real switch is tried, as in a user namespace that does not map
    the uid or without CAP_SETUID it fails."""
    if not os.access(SETPRIV, os.X_OK):
        return f"{SETPRIV} (util-linux) is not installed"
    argv = [*setpriv_argv(host_uid), ID, "-u"]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=HELPER_ENV, timeout=PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot switch to host uid {host_uid}: {exc}"
    if done.returncode != 0 or done.stdout.strip() != str(host_uid):
        detail = done.stderr.strip() or f"id -u said {done.stdout.strip()!r}"
        return f"cannot switch to host uid {host_uid}: {detail}"
    return None


def capability_blocker(status_path: str = "/proc/self/status") -> str | None:
    """Why a non-root sandboxd may not run boxes as itself (it holds capabilities a box
    would inherit), or None. Reads the capability sets from `status_path`."""
    with open(status_path) as status:
        held = {
            name: value.strip()
            for name, _, value in (line.partition(":") for line in status)
            if name in _CAP_SETS and int(value, 16) != 0
        }
    if not held:
        return None
    sets = ", ".join(f"{name}={value}" for name, value in sorted(held.items()))
    return (
        f"sandboxd runs as uid {os.getuid()} with capabilities ({sets}): a box would run "
        "with them; run it as root (boxes get their own uids) or as a plain user"
    )


def _process_states(proc_root: str = "/proc") -> list[tuple[int, str]]:
    """(real uid, state letter) of every process now, from /proc/<pid>/status: a tenth of
    what psutil costs per process, which matters on every launch and kill. Processes that
    exit meanwhile are skipped."""
    found = []
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc_root}/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            found.append((int(fields["Uid"].split()[0]), fields["State"].split()[0]))
        except (OSError, KeyError, ValueError, IndexError):
            continue
    return found


def uids_with_processes() -> set[int]:
    """Real uids of every process on the host now (zombies too: they still count
    against their uid's RLIMIT_NPROC until reaped)."""
    return {uid for uid, _ in _process_states()}


def has_live_processes(host_uid: int) -> bool:
    """Whether a process (not a zombie) runs with real uid `host_uid`."""
    return any(uid == host_uid and state != "Z" for uid, state in _process_states())


def kill_uid_argv(host_uid: int) -> Sequence[str]:
    """setpriv to `host_uid`, then kill(-1, SIGKILL): every process that uid may signal
    (all of its own) dies in one system call, so none can fork away meanwhile."""
    # procps kill takes the pid -1 only this way (no "--", no "-s KILL" before it).
    return [*setpriv_argv(host_uid), KILL, "-9", "-1"]


async def kill_uid(host_uid: int) -> None:
    """SIGKILL every process of `host_uid` and wait until none runs. `host_uid` must be a
    box's own uid: anything else running as it dies too."""
    if host_uid < 1000:
        raise ValueError(f"refusing to kill every process of uid {host_uid}")
    process = await asyncio.create_subprocess_exec(
        *kill_uid_argv(host_uid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=HELPER_ENV,
    )
    await asyncio.wait_for(process.wait(), KILL_UID_TIMEOUT_S)  # its exit code says nothing
    await wait_until(lambda: not has_live_processes(host_uid), KILL_UID_TIMEOUT_S, "the uid's end")
