"""A box's user namespace, made by host root: box ids 0..65535 are host ids R..R+65535.

bwrap alone can only map the one uid it runs as, which leaves no room for a root in the
box. So host root makes the namespace: a forked holder drops to host id R (no groups),
unshares a user namespace (which R then owns), and waits; host root writes its uid_map
and gid_map (`0 R 65536`, which needs host root's CAP_SETUID/CAP_SETGID) and opens
/proc/<holder>/ns/user. bwrap, started as R (the namespace's owner, so setns into it is
allowed), joins it with `--userns FD`. The holder is then killed and reaped: the open fd
keeps the namespace alive until bwrap is in it, and bwrap's processes keep it after.

Before it waits, the holder (root of the new namespace) sets user.max_user_namespaces to
0 there: nothing in the box may nest another user namespace, besides the seccomp filter
and bwrap's own `--disable-userns` checks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass

# Every box gets this many ids: box uid/gid 0..65535, like a container's default range.
BOX_ID_COUNT = 65_536
CLONE_NEWUSER = 0x10000000
_LIBC = ctypes.CDLL(None, use_errno=True)
_UNSHARE = _LIBC.unshare  # resolved now: the forked holder should do as little as it can
_HOLDER_READY = b"r"
_HOLDER_FAILED = b"f"


class UsernsError(RuntimeError):
    """The namespace could not be made (the holder failed, or the map was refused)."""


@dataclass
class BoxUserns:
    """An open fd on a box's user namespace (close-on-exec: pass it with pass_fds) and
    the first host id of its range."""

    fd: int
    host_base: int

    def close(self) -> None:
        """Close the fd (idempotent); the namespace lives on while processes are in it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def id_map(host_base: int, count: int = BOX_ID_COUNT) -> str:
    """The uid_map/gid_map line: box id 0 is host id `host_base`, for `count` ids."""
    return f"0 {host_base} {count}\n"


def new_box_userns(host_base: int) -> BoxUserns:
    """Make a user namespace owned by host id `host_base` that maps box ids 0..65535 to
    host ids host_base..host_base+65535. Needs host root. UsernsError on failure."""
    if host_base < 1000 or host_base + BOX_ID_COUNT > 2**32 - 1:
        raise ValueError(f"host id range from {host_base} is not unprivileged and valid")
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the holder: no Python beyond system calls until _exit
        os.close(status_r)
        _hold(host_base, status_w, hold_r, hold_w)
    os.close(status_w)
    os.close(hold_r)
    try:
        if os.read(status_r, 1) != _HOLDER_READY:
            raise UsernsError("the holder could not unshare a user namespace as the box's id")
        line = id_map(host_base)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as file:
                file.write(line)
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsernsError(f"cannot map host ids from {host_base}: {exc}") from exc
    finally:
        os.close(status_r)
        os.close(hold_w)  # the holder reads EOF, closes the namespace to nesting and ends
        _, status = os.waitpid(pid, 0)
    if status != 0:
        os.close(fd)
        raise UsernsError("the holder could not close its namespace to nested ones")
    return BoxUserns(fd, host_base)


def _hold(host_base: int, status_w: int, hold_r: int, hold_w: int) -> None:
    """The holder's whole life (in the forked child; never returns)."""
    code = 1
    try:
        os.close(hold_w)  # the parent's end: only the parent may hold it, or no EOF comes
        os.setgroups([])
        os.setresgid(host_base, host_base, host_base)
        os.setresuid(host_base, host_base, host_base)
        if _UNSHARE(CLONE_NEWUSER) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        os.write(status_w, _HOLDER_READY)
        os.read(hold_r, 1)  # EOF once the parent has the namespace's fd
        _forbid_nested_userns()
        code = 0
    except BaseException:  # noqa: BLE001 (report and leave; never run the parent's code)
        with contextlib.suppress(OSError):
            os.write(status_w, _HOLDER_FAILED)
    finally:
        os._exit(code)


def _forbid_nested_userns() -> None:
    """As root of the new namespace (its map is written by now): no user namespace may
    be made inside it (seccomp also denies unshare and clone(CLONE_NEWUSER))."""
    fd = os.open("/proc/sys/user/max_user_namespaces", os.O_WRONLY)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
