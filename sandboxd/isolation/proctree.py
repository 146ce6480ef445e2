"""A box's process tree seen through psutil, for the "reduced" level (no cgroups).

The tree is the launched process and its descendants. Orphans re-parented outside it
(possible only without a PID namespace) are out of sight: that is a stated limitation.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any

import psutil

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass(frozen=True)
class TreeUsage:
    """CPU % summed over the tree (100 = one core busy) and resident memory in bytes."""

    cpu_pct_one_core: float
    rss_bytes: int


class ProcessTree:
    """The tree under `root_pid`. Keeps its `psutil.Process` objects between readings,
    because psutil's CPU % is measured since the previous call on the same object."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self._known: dict[int, Any] = {}

    def processes(self) -> list[Any]:
        """The live processes of the tree, root first (empty once the root is gone)."""
        try:
            root = psutil.Process(self.root_pid)
            found = [root, *root.children(recursive=True)]
        except _GONE:
            return []
        current = {p.pid: self._known.get(p.pid, p) for p in found}
        self._known = current
        return list(current.values())

    def pids(self) -> list[int]:
        """Host PIDs of the tree, root first."""
        return [p.pid for p in self.processes()]

    def first_child_pid(self) -> int | None:
        """The root's direct child with the lowest PID (bwrap's only child: the box's
        PID 1), if any."""
        try:
            children = psutil.Process(self.root_pid).children()
        except _GONE:
            return None
        return min(children, key=lambda p: p.pid).pid if children else None

    def signal_all(self, sig: int, rounds: int = 3) -> list[Any]:
        """Send `sig` to every process, parents first, a few rounds so that children
        forked meanwhile are caught too. Returns the processes signalled."""
        sent: dict[int, Any] = {}
        for _ in range(rounds):
            fresh = [p for p in self.processes() if p.pid not in sent]
            if not fresh:
                break
            for proc in fresh:
                with contextlib.suppress(*_GONE):
                    proc.send_signal(sig)
                sent[proc.pid] = proc
        return list(sent.values())

    def stop(self) -> None:
        """SIGSTOP the whole tree."""
        self.signal_all(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT the whole tree."""
        self.signal_all(signal.SIGCONT)

    def kill(self) -> list[Any]:
        """SIGKILL the whole tree, and its process group. Returns the processes killed."""
        killed = self.signal_all(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.root_pid, signal.SIGKILL)
        return killed

    def usage(self) -> TreeUsage:
        """CPU since the previous call and current RSS, summed over the tree."""
        cpu_pct = 0.0
        rss_bytes = 0
        for proc in self.processes():
            with contextlib.suppress(*_GONE):
                cpu_pct += float(proc.cpu_percent(interval=None))
                rss_bytes += int(proc.memory_info().rss)
        return TreeUsage(cpu_pct, rss_bytes)


def all_dead(procs: list[Any]) -> bool:
    """True when none of `procs` runs any more (gone, or a zombie awaiting its reaper:
    orphans of a killed tree are reaped by the host's init, on its own schedule)."""
    for proc in procs:
        with contextlib.suppress(*_GONE):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
    return True


def create_time_of(pid: int) -> float | None:
    """The process's start time (s since the epoch), None if it does not exist."""
    try:
        return float(psutil.Process(pid).create_time())
    except _GONE:
        return None


def kill_if_same(pid: int, create_time: float) -> bool:
    """Kill the tree of `pid` if it is still the process started at `create_time` (and
    not a later one that reused the PID). True if it was killed."""
    now = create_time_of(pid)
    if now is None or abs(now - create_time) > 0.05:
        return False
    ProcessTree(pid).kill()
    return True
