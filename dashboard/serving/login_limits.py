"""How often sign-ins may be tried: after a few failures, a lock-out that doubles with each
further failure, counted per user name and per client address.

Pure and thread-safe: the clock (monotonic seconds) is a parameter, and every Streamlit
session thread shares one `LoginLimiter`. An attempt counts as a failure from the moment it
starts (a success takes it back), so parallel sessions cannot all slip through one gap.
Unknown user names are counted exactly like known ones: the lock-out tells nothing about
which names exist.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Typos are free: a user mistyping a password a few times is not locked out.
FREE_FAILURES_PER_NAME = 3
# One address may hold several users (an office behind NAT, everyone on loopback): more slack.
FREE_FAILURES_PER_ADDRESS = 10
# The first lock-out; each further failure doubles it ...
FIRST_LOCKOUT_S = 2.0
# ... up to this. Five minutes leaves ~300 guesses a day per name, while whoever locks a
# name out on purpose (the price of per-name limits) costs its owner at most this long.
MAX_LOCKOUT_S = 300.0
# A name or address whose last failure is this old starts afresh.
FORGET_AFTER_S = 3600.0
# Records kept at most (a few hundred bytes each), the least recently failed dropped first:
# a spray of made-up names cannot grow the process without bound.
MAX_RECORDS = 10_000
# Only this much of a typed name is kept as a key.
MAX_KEY_CHARS = 256


@dataclass
class _Record:
    failures: int = 0
    last_failure_s: float = 0.0
    locked_until_s: float = 0.0


class LoginLimiter:
    """Failed sign-ins by user name and by client address, and the lock-outs they earn."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def begin(self, name: str, address: str | None) -> float:
        """Start an attempt: 0.0 when it may go ahead (it is counted as a failure until
        `succeeded`), else the seconds left of the lock-out (nothing is counted)."""
        keys = _keys(name, address)
        with self._lock:
            now = self._clock()
            wait_s = max(self._record(key, now).locked_until_s - now for key in keys)
            if wait_s > 0:
                return wait_s
            name_key, address_key = keys
            self._fail(name_key, FREE_FAILURES_PER_NAME, now)
            self._fail(address_key, FREE_FAILURES_PER_ADDRESS, now)
            return 0.0

    def succeeded(self, name: str, address: str | None) -> None:
        """The attempt begun for `name` succeeded: the name starts afresh, and the address
        gets its attempt back."""
        name_key, address_key = _keys(name, address)
        with self._lock:
            self._records.pop(name_key, None)
            record = self._records.get(address_key)
            if record is not None:
                record.failures = max(0, record.failures - 1)
                lockout_s = lockout_s_after(record.failures, FREE_FAILURES_PER_ADDRESS)
                record.locked_until_s = record.last_failure_s + lockout_s if lockout_s else 0.0

    def locked_for_s(self, name: str, address: str | None) -> float:
        """Seconds until `name` may try again from `address`; 0.0 when it may now."""
        keys = _keys(name, address)
        with self._lock:
            now = self._clock()
            return max(0.0, *(self._record(key, now).locked_until_s - now for key in keys))

    def _record(self, key: tuple[str, str], now: float) -> _Record:
        record = self._records.get(key)
        if record is None or now - record.last_failure_s > FORGET_AFTER_S:
            return _Record()
        return record

    def _fail(self, key: tuple[str, str], free: int, now: float) -> None:
        record = self._record(key, now)
        record.failures += 1
        record.last_failure_s = now
        lockout_s = lockout_s_after(record.failures, free)
        if lockout_s:
            record.locked_until_s = now + lockout_s
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > MAX_RECORDS:
            self._records.popitem(last=False)


def lockout_s_after(failures: int, free: int) -> float:
    """The lock-out (s) that the `failures`-th failure in a row earns; 0.0 while free."""
    if failures <= free:
        return 0.0
    doublings = min(failures - free - 1, 30)  # past the cap anyway; keeps the float small
    return min(FIRST_LOCKOUT_S * 2.0**doublings, MAX_LOCKOUT_S)


def _keys(name: str, address: str | None) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("name", name[:MAX_KEY_CHARS]), ("address", address or "loopback")
