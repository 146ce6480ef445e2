"""Host uids for boxes: each live box runs as its own unprivileged uid, so two boxes can
neither signal nor ptrace each other, nor read each other's files, even if one escaped
its namespaces, and per-uid kernel limits apply per box."""

from __future__ import annotations

import grp
import pwd
import threading
from collections.abc import Container

# Uids one sandboxd may hand out, from SANDBOXD_HOST_UID_BASE: one per live box, far more
# than SANDBOXD_MAX_SANDBOXES will ever need, in a range no account uses.
HOST_UID_COUNT = 10_000


class HostUidPool:
    """Hands out uids in [base, base + count), each to at most one live box."""

    def __init__(self, base: int = 200_000, count: int = HOST_UID_COUNT) -> None:
        if base < 1000 or count < 1:
            raise ValueError("host uids must be unprivileged (>= 1000) and count >= 1")
        self.base = base
        self.count = count
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def allocate(self, busy: Container[int] = ()) -> int:
        """The lowest free uid not in `busy` (e.g. uids some host process still runs as);
        RuntimeError when every uid of the range is in use."""
        with self._lock:
            for uid in range(self.base, self.base + self.count):
                if uid not in self._used and uid not in busy:
                    self._used.add(uid)
                    return uid
        raise RuntimeError(f"all {self.count} host uids from {self.base} are in use")

    def release(self, uid: int) -> None:
        """Give `uid` back (no-op if it was not handed out)."""
        with self._lock:
            self._used.discard(uid)


def accounts_in_range(base: int, count: int) -> list[str]:
    """Host users and groups whose id falls in [base, base + count), as "user NAME (ID)":
    a box given such an id could signal that user's processes and open its files."""
    end = base + count
    found = [f"user {u.pw_name} ({u.pw_uid})" for u in pwd.getpwall() if base <= u.pw_uid < end]
    found += [f"group {g.gr_name} ({g.gr_gid})" for g in grp.getgrall() if base <= g.gr_gid < end]
    return found
