"""OOM kills in boxes, from the kernel log (/dev/kmsg, root only).

The kernel names the memory cgroup, the victim and its host PID:

    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/sandboxd/abc,task_memcg=/sandboxd/abc,task=python3,pid=4819,uid=200000
    Memory cgroup out of memory: Killed process 4819 (python3) total-vm:...

The path is the group's path in its hierarchy, `/<parent>/<name>`, on both cgroup
backends: the v1 memory hierarchy's on a hybrid host, the one cgroup2 hierarchy's on a v2
host. The `oom-kill:` line is rate-limited by the kernel (10 per 5 s); the `Killed process`
line is not, but it names no cgroup, so it is mapped through /proc/<pid>/cgroup while the
victim is still exiting (the v1 `memory` line, else the v2 `0::` line). When
`memory.oom.group` is set on a box or above it, one OOM kills every task of that group:
the kernel says `Tasks in /<path> are going to be killed due to memory.oom.group set`,
then a `Killed process` line per task; a task already gone from /proc is counted to that
group. Each box's own counter (v1 memory.oom_control or v2 memory.events `oom_kill`, one
per process killed, group kills included) is the cross-check: a kill the counter shows
but the log never named (rate limit, ring buffer overrun) is reported after a grace
period with pid and name unknown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandboxd.isolation.base import OomKill

log = logging.getLogger(__name__)

_OOM_KILL = re.compile(
    r"oom-kill:.*?oom_memcg=(?P<memcg>[^,]*),.*?task=(?P<task>.*?),pid=(?P<pid>\d+)"
)
_KILLED = re.compile(r"Memory cgroup out of memory: Killed process (?P<pid>\d+) \((?P<task>.*?)\)")
_GROUP_KILL = re.compile(
    r"Tasks in (?P<memcg>\S+) are going to be killed due to memory\.oom\.group set"
)
# Counter ahead of the log for this many ticks (1 s each) = a kill the log will not name.
_GRACE_TICKS = 2


@dataclass(frozen=True)
class KmsgOom:
    """One OOM kill as the kernel log tells it; `memcg` None for a `Killed process` line."""

    memcg: str | None
    pid: int
    process_name: str
    ts_us: int  # kernel monotonic clock, microseconds since boot


@dataclass
class _Watched:
    sandbox_id: str
    limit_bytes: int
    read_count: Callable[[], int]
    reported: int = 0
    behind_ticks: int = 0


def parse_kmsg_record(record: str) -> tuple[int, str] | None:
    """A /dev/kmsg record (`prio,seq,ts_us,flags;message\\n KEY=v...`) as (ts_us, message)."""
    head, sep, rest = record.partition(";")
    fields = head.split(",")
    if not sep or len(fields) < 3 or not fields[2].isdigit():
        return None
    return int(fields[2]), rest.split("\n", 1)[0]


def parse_oom_message(message: str, ts_us: int = 0) -> KmsgOom | None:
    """The OOM kill a kernel message reports, or None for any other message."""
    if match := _OOM_KILL.search(message):
        return KmsgOom(match["memcg"], int(match["pid"]), match["task"], ts_us)
    if match := _KILLED.search(message):
        return KmsgOom(None, int(match["pid"]), match["task"], ts_us)
    return None


def memcg_of_pid(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The memory cgroup of a (possibly exiting) process: its v1 `memory` hierarchy's path
    on a hybrid host, else its cgroup2 path (the `0::` line, all there is on a v2 host);
    None once the process is gone."""
    v2_path = None
    try:
        with open(proc / str(pid) / "cgroup") as f:
            for line in f:
                hierarchy_id, controllers, path = line.rstrip("\n").split(":", 2)
                if "memory" in controllers.split(","):
                    return path
                if hierarchy_id == "0" and not controllers:
                    v2_path = path
    except (OSError, ValueError):
        return None
    return v2_path


def parse_group_kill(message: str) -> str | None:
    """The memory cgroup a `memory.oom.group` kill is about to empty, or None."""
    match = _GROUP_KILL.search(message)
    return match["memcg"] if match else None


def kernel_ts_to_utc(ts_us: int) -> datetime:
    """Convert a kmsg timestamp (monotonic µs since boot) to a UTC datetime."""
    age_s = max(0.0, time.monotonic() - ts_us / 1e6)
    return datetime.now(UTC) - timedelta(seconds=age_s)


class KmsgOomWatcher:
    """One daemon thread reading /dev/kmsg from its end at `start()` until `close()`."""

    def __init__(self, kmsg_path: str = "/dev/kmsg", tick_s: float = 1.0) -> None:
        self.kmsg_path = kmsg_path
        self.tick_s = tick_s
        self._watched: dict[str, _Watched] = {}
        self._callbacks: list[Callable[[OomKill], None]] = []
        self._recent_pids: list[int] = []
        # The group a `memory.oom.group` kill is emptying, until the next OOM event.
        self._group_kill_memcg: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1

    def add_callback(self, callback: Callable[[OomKill], None]) -> None:
        """Call `callback(OomKill)` from the watcher thread for every kill in a box."""
        with self._lock:
            self._callbacks.append(callback)

    def register(
        self, memcg: str, sandbox_id: str, limit_bytes: int, read_count: Callable[[], int]
    ) -> None:
        """Watch memory cgroup `memcg` (`/parent/name`); `read_count` reads its counter."""
        with self._lock:
            self._watched[memcg] = _Watched(sandbox_id, limit_bytes, read_count, read_count())

    def unregister(self, memcg: str) -> None:
        """Stop watching `memcg` (its box is gone)."""
        with self._lock:
            self._watched.pop(memcg, None)

    def start(self) -> None:
        """Open the log at its current end and start the thread (no-op if running). If
        the log cannot be read, the thread runs the counter cross-check alone."""
        if self._thread is not None:
            return
        fd = self._open_kmsg()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(fd,), name="sandboxd-kmsg-oom", daemon=True
        )
        self._thread.start()

    def _open_kmsg(self) -> int | None:
        try:
            fd = os.open(self.kmsg_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot read %s (%s): OOM kills reported without pid", self.kmsg_path, exc)
            return None
        with contextlib.suppress(OSError):  # a FIFO in tests cannot seek
            os.lseek(fd, 0, os.SEEK_END)
        return fd

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and close the log."""
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout_s)
        self._thread = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self, fd: int | None) -> None:
        poller = select.poll()
        if fd is not None:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        next_tick = time.monotonic() + self.tick_s
        try:
            while not self._stop.is_set():
                wait_ms = max(0, int((next_tick - time.monotonic()) * 1000))
                ready = [ready_fd for ready_fd, _ in poller.poll(wait_ms)]
                if fd is not None and fd in ready:
                    self._drain(fd)
                if time.monotonic() >= next_tick:
                    self.cross_check()
                    next_tick = time.monotonic() + self.tick_s
        except Exception:  # the thread's boundary: say why OOM watching stopped
            log.exception("kmsg OOM watcher stopped")
        finally:
            if fd is not None:
                os.close(fd)

    def _drain(self, fd: int) -> None:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                return
            except BrokenPipeError:  # records overwritten before we read them: go on
                continue
            if not record:
                return
            self.handle_record(record.decode(errors="replace"))

    def handle_record(self, record: str) -> None:
        """Handle one kmsg record; reports it if it is an OOM kill in a watched box."""
        parsed = parse_kmsg_record(record)
        if parsed is None:
            return
        if (group := parse_group_kill(parsed[1])) is not None:
            self._group_kill_memcg = group
            return
        oom = parse_oom_message(parsed[1], parsed[0])
        if oom is None:
            return
        if oom.memcg is not None:  # a new OOM event: a group kill before it is over
            self._group_kill_memcg = None
        memcg = oom.memcg or memcg_of_pid(oom.pid) or self._group_kill_memcg
        with self._lock:
            watched = self._watched.get(memcg or "")
            if watched is None or oom.pid in self._recent_pids:
                return
            self._recent_pids = [*self._recent_pids[-63:], oom.pid]
            watched.reported += 1
        kill = OomKill(
            watched.sandbox_id, kernel_ts_to_utc(oom.ts_us), oom.pid, oom.process_name,
            watched.limit_bytes,
        )  # fmt: skip
        self._emit(kill)

    def cross_check(self) -> None:
        """Report kills the counters show but the log never named (pid and name None)."""
        missing: list[OomKill] = []
        with self._lock:
            for watched in self._watched.values():
                missing += self._missing_kills(watched)
        for kill in missing:
            self._emit(kill)

    @staticmethod
    def _missing_kills(watched: _Watched) -> list[OomKill]:
        try:
            count = watched.read_count()
        except OSError:
            return []
        if count <= watched.reported:
            watched.behind_ticks = 0
            return []
        watched.behind_ticks += 1
        if watched.behind_ticks < _GRACE_TICKS:
            return []
        n, watched.reported, watched.behind_ticks = count - watched.reported, count, 0
        now = datetime.now(UTC)
        return [OomKill(watched.sandbox_id, now, None, None, watched.limit_bytes)] * n

    def _emit(self, kill: OomKill) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(kill)
            except Exception:  # a callback's failure must not stop OOM watching
                log.exception("OOM callback failed for %s", kill.sandbox_id)
