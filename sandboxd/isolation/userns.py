"""A box's user namespace, made by host root: box ids 0..65535 are host ids R..R+65535.

bwrap alone can only map the one uid it runs as, which leaves no room for a root in the
box. So host root makes the namespace: a holder process (`setpriv` to host id R, no
groups, then `unshare --user`) makes a user namespace that R owns and waits on its stdin;
host root writes its uid_map and gid_map (`0 R 65536`, which needs host root's
CAP_SETUID/CAP_SETGID) and opens /proc/<holder>/ns/user. bwrap, started as R (the
namespace's owner, so setns into it is allowed), joins it with `--userns FD`. The holder
then ends (EOF on its stdin) and is reaped: the open fd keeps the namespace alive until
bwrap is in it, and bwrap's processes keep it after.

The holder is exec'd tools, not a fork of sandboxd: forking a server of a few hundred MB
copies its page tables on every create (~20 ms at 300 MB), where two small execs cost a
few ms whatever sandboxd's size. Nothing in the box may nest another user namespace: the
seccomp filter denies unshare, setns and clone with namespace flags (bwrap's own
--disable-userns works only in a namespace bwrap makes itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from dataclasses import dataclass

from sandboxd.isolation.bwrap import HELPER_ENV, SETPRIV

UNSHARE = "/usr/bin/unshare"
SH = "/bin/sh"
# Every box gets this many ids: box uid/gid 0..65535, like a container's default range.
BOX_ID_COUNT = 65_536
_HOLDER_TIMEOUT_S = 10.0


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


def holder_argv(host_base: int) -> list[str]:
    """As host id `host_base` (no groups, no capabilities), a new user namespace, in which
    the holder says it is there and waits for EOF on its stdin."""
    setpriv = [SETPRIV, f"--reuid={host_base}", f"--regid={host_base}", "--clear-groups"]
    return [*setpriv, UNSHARE, "--user", "--", SH, "-c", "echo in; exec cat >/dev/null"]


async def new_box_userns(host_base: int) -> BoxUserns:
    """Make a user namespace owned by host id `host_base` that maps box ids 0..65535 to
    host ids host_base..host_base+65535. Needs host root. UsernsError on failure. Async,
    so a launch makes it while the box's disk is being formatted."""
    if host_base < 1000 or host_base + BOX_ID_COUNT > 2**32 - 1:
        raise ValueError(f"host id range from {host_base} is not unprivileged and valid")
    holder = await asyncio.create_subprocess_exec(
        *holder_argv(host_base),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=HELPER_ENV,
        cwd="/",
    )
    assert holder.stdin is not None and holder.stdout is not None and holder.stderr is not None
    try:
        ready = await asyncio.wait_for(holder.stdout.readline(), _HOLDER_TIMEOUT_S)
        if ready != b"in\n":
            holder.stdin.close()
            said = await asyncio.wait_for(holder.stderr.read(4096), _HOLDER_TIMEOUT_S)
            raise UsernsError(f"no user namespace as host id {host_base}: {said.decode().strip()}")
        line = id_map(host_base)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as file:
                file.write(line)
        fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        return BoxUserns(fd, host_base)
    except OSError as exc:
        raise UsernsError(f"cannot map host ids from {host_base}: {exc}") from exc
    finally:
        holder.stdin.close()  # the holder ends; killed if it does not
        try:
            await asyncio.wait_for(holder.wait(), _HOLDER_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                holder.kill()
            await holder.wait()
            raise
