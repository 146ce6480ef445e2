"""Host uids for boxes: each live box runs as its own unprivileged uids, so two boxes can
neither signal nor ptrace each other, nor read each other's files, even if one escaped
its namespaces, and per-uid kernel limits apply per box.

A reduced box has one uid (`HostUidPool`); a full box has a range of BOX_ID_COUNT (65,536)
host ids, box id N being host id R + N (`HostIdRangePool`, userns.py): box root is R,
the box's user (1000) is R + 1000. Ranges never overlap between live boxes."""

from __future__ import annotations

import grp
import pwd
import threading
from collections.abc import Container, Iterable

# Uids one sandboxd may hand out, from SANDBOXD_HOST_UID_BASE: one per live box, far more
# than SANDBOXD_MAX_SANDBOXES will ever need, in a range no account uses.
HOST_UID_COUNT = 10_000
# Id ranges of full boxes, from the same base: 1,024 boxes of 65,536 ids each (2**26 ids).
HOST_ID_RANGE_COUNT = 1024
# Files of subordinate ids (newuidmap's): ranges handed to host users' own containers.
SUBID_FILES = ("/etc/subuid", "/etc/subgid")


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


class HostIdRangePool:
    """Hands out ranges [R, R + size) with R = base + i * size (i < count), each to at most
    one live box."""

    def __init__(self, base: int, size: int, count: int = HOST_ID_RANGE_COUNT) -> None:
        if base < 1000 or size < 1 or count < 1 or base + size * count > 2**32 - 1:
            raise ValueError("host id ranges must be unprivileged (>= 1000) and below 2**32 - 1")
        self.base = base
        self.size = size
        self.count = count
        self._used: set[int] = set()
        self._lock = threading.Lock()

    @property
    def span(self) -> int:
        """How many host ids all the ranges cover, from `base`."""
        return self.size * self.count

    def allocate(self, busy: Iterable[int] = ()) -> int:
        """The first id of the lowest free range holding no id of `busy` (e.g. uids some
        host process still runs as: a crashed run's box); RuntimeError when none is free."""
        busy_ranges = {(uid - self.base) // self.size for uid in busy if uid >= self.base}
        with self._lock:
            for index in range(self.count):
                start = self.base + index * self.size
                if start not in self._used and index not in busy_ranges:
                    self._used.add(start)
                    return start
        raise RuntimeError(f"all {self.count} host id ranges from {self.base} are in use")

    def release(self, start: int) -> None:
        """Give back the range starting at `start` (no-op if it was not handed out)."""
        with self._lock:
            self._used.discard(start)


def accounts_in_range(base: int, count: int) -> list[str]:
    """Host users and groups whose id falls in [base, base + count), and subordinate id
    ranges (/etc/subuid, /etc/subgid) that overlap it, as "user NAME (ID)": a box given
    such an id could signal that user's processes (or containers) and open its files."""
    end = base + count
    found = [f"user {u.pw_name} ({u.pw_uid})" for u in pwd.getpwall() if base <= u.pw_uid < end]
    found += [f"group {g.gr_name} ({g.gr_gid})" for g in grp.getgrall() if base <= g.gr_gid < end]
    for path in SUBID_FILES:
        for owner, first, size in _subid_ranges(path):
            if first < end and base < first + size:
                found.append(f"{path} range of {owner} ({first}..{first + size - 1})")
    return found


def _subid_ranges(path: str) -> list[tuple[str, int, int]]:
    """(owner, first id, count) lines of a subordinate id file; none when it is absent."""
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except OSError:
        return []
    ranges = []
    for line in lines:
        fields = line.split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            ranges.append((fields[0], int(fields[1]), int(fields[2])))
    return ranges
