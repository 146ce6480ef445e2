"""Host uids for boxes: each live box runs as its own unprivileged uid, so two boxes can
neither signal nor ptrace each other, nor read each other's files, even if one escaped
its namespaces, and per-uid kernel limits apply per box."""

from __future__ import annotations

import threading


class HostUidPool:
    """Hands out uids in [base, base + count), each to at most one live box."""

    def __init__(self, base: int = 200_000, count: int = 10_000) -> None:
        if base < 1000 or count < 1:
            raise ValueError("host uids must be unprivileged (>= 1000) and count >= 1")
        self.base = base
        self.count = count
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def allocate(self) -> int:
        """The lowest free uid; RuntimeError when every uid of the range is in use."""
        with self._lock:
            for uid in range(self.base, self.base + self.count):
                if uid not in self._used:
                    self._used.add(uid)
                    return uid
        raise RuntimeError(f"all {self.count} host uids from {self.base} are in use")

    def release(self, uid: int) -> None:
        """Give `uid` back (no-op if it was not handed out)."""
        with self._lock:
            self._used.discard(uid)

    def in_use(self) -> set[int]:
        """The uids of live boxes."""
        with self._lock:
            return set(self._used)
