"""Work one job finds for another, kept in memory between runs (thread-safe).

The poll job notices gaps in a sandbox's samples and signs of trouble (memory near its
limit, an end); the events job notices kills; the trouble job's log sweep notices OOM
lines. The backfill and trouble jobs take that work in later runs. The backfill queue is
also saved in the store (`to_json`/`load_json`) before the samples that reveal a gap are
written, so a kill -9 between the poll and the backfill loses no gap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

TroubleKind = Literal["oom_line", "ended", "memory_high", "memory_settled"]
_HANDLED_KEPT = 10_000


@dataclass(frozen=True)
class Gap:
    """Samples of `sandbox_id` missing from `since` to `until` (UTC, inclusive)."""

    sandbox_id: str
    since: datetime
    until: datetime


class BackfillQueue:
    """Gaps waiting to be fetched, one merged gap per sandbox, and whether the previous
    poll of this process succeeded (if not, any gap at all is worth fetching)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gaps: dict[str, Gap] = {}
        self._last_poll_ok = False

    def poll_started(self) -> bool:
        """Whether the previous poll of this process succeeded; false until this one does."""
        with self._lock:
            was_ok, self._last_poll_ok = self._last_poll_ok, False
        return was_ok

    def poll_succeeded(self) -> None:
        """The poll that started last succeeded."""
        with self._lock:
            self._last_poll_ok = True

    def want(self, gap: Gap) -> None:
        """Ask for a gap; it merges with any gap already waiting for the same sandbox."""
        with self._lock:
            kept = self._gaps.get(gap.sandbox_id)
            if kept is not None:
                gap = Gap(gap.sandbox_id, min(kept.since, gap.since), max(kept.until, gap.until))
            self._gaps[gap.sandbox_id] = gap

    def take(self, limit: int) -> list[Gap]:
        """Up to `limit` waiting gaps, oldest request first; they leave the queue."""
        with self._lock:
            taken = list(self._gaps.values())[:limit]
            for gap in taken:
                del self._gaps[gap.sandbox_id]
        return taken

    def put_back(self, gaps: Iterable[Gap]) -> None:
        """Return gaps not (fully) fetched, e.g. after a failure."""
        for gap in gaps:
            self.want(gap)

    def __len__(self) -> int:
        with self._lock:
            return len(self._gaps)

    def to_json(self) -> str:
        """The waiting gaps, for the store."""
        with self._lock:
            gaps = [
                {
                    "sandbox_id": g.sandbox_id,
                    "since": g.since.isoformat(),
                    "until": g.until.isoformat(),
                }
                for g in self._gaps.values()
            ]
        return json.dumps(gaps)

    def load_json(self, text: str | None) -> None:
        """Queue the gaps a previous run saved (nothing when `text` is None)."""
        for gap in json.loads(text or "[]"):
            self.want(
                Gap(
                    gap["sandbox_id"],
                    datetime.fromisoformat(gap["since"]),
                    datetime.fromisoformat(gap["until"]),
                )
            )


@dataclass(frozen=True)
class Trouble:
    """A sign of trouble in one sandbox at `at` (UTC). `high_since` is when its memory
    first came near its limit (if it did); `end_reason` is known for `ended` signs."""

    sandbox_id: str
    kind: TroubleKind
    at: datetime
    high_since: datetime | None = None
    end_reason: str | None = None


class TroubleWatch:
    """Signs of trouble waiting for the trouble job, and which sandboxes run high now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, TroubleKind, datetime], Trouble] = {}
        self._high_since: dict[str, datetime] = {}
        # Signs already handled, so one seen twice (an end noticed by the poll and by the
        # events job) is handled once; the oldest are forgotten first.
        self._handled: dict[tuple[str, TroubleKind, datetime], None] = {}

    def flag(self, trouble: Trouble) -> None:
        """Queue a sign (the same sandbox, kind and time is queued once)."""
        with self._lock:
            self._flag_locked(trouble)

    def memory_sample(self, sandbox_id: str, at: datetime, high: bool) -> None:
        """Note one new sample: the first high one is a sign (`memory_high`); the first one
        after that is not high is another (`memory_settled`), when a drop may show a kill."""
        with self._lock:
            since = self._high_since.get(sandbox_id)
            if high and since is None:
                self._high_since[sandbox_id] = at
                self._flag_locked(Trouble(sandbox_id, "memory_high", at, high_since=at))
            elif not high and since is not None:
                del self._high_since[sandbox_id]
                self._flag_locked(Trouble(sandbox_id, "memory_settled", at, high_since=since))

    def _flag_locked(self, trouble: Trouble) -> None:
        if trouble.kind == "ended":
            # An end while memory was high: the samples to look at start where it rose.
            high_since = self._high_since.pop(trouble.sandbox_id, None)
            trouble = replace(trouble, high_since=trouble.high_since or high_since)
        key = (trouble.sandbox_id, trouble.kind, trouble.at)
        if key not in self._handled:
            self._pending.setdefault(key, trouble)

    def take(self, limit: int) -> list[Trouble]:
        """Up to `limit` signs, oldest first; they leave the queue."""
        with self._lock:
            taken = sorted(self._pending.values(), key=lambda t: t.at)[:limit]
            for trouble in taken:
                key = (trouble.sandbox_id, trouble.kind, trouble.at)
                del self._pending[key]
                self._handled[key] = None
            while len(self._handled) > _HANDLED_KEPT:
                del self._handled[next(iter(self._handled))]
        return taken

    def put_back(self, troubles: Iterable[Trouble]) -> None:
        """Return signs not handled, e.g. after a failure."""
        with self._lock:
            for trouble in troubles:
                key = (trouble.sandbox_id, trouble.kind, trouble.at)
                self._handled.pop(key, None)
                self._pending.setdefault(key, trouble)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


class LogSweep:
    """Where the log sweep is: a forward cursor (UTC) per sandbox, and whose turn is next."""

    def __init__(self, lookback: timedelta) -> None:
        self._lock = threading.Lock()
        self._lookback = lookback
        self._cursors: dict[str, datetime] = {}
        self._turn = 0

    def next_sandboxes(self, live_ids: Iterable[str], limit: int) -> list[str]:
        """Up to `limit` of `live_ids`, continuing the round robin where the last run left
        it; cursors of sandboxes no longer live are dropped."""
        ordered = sorted(live_ids)
        with self._lock:
            self._cursors = {k: v for k, v in self._cursors.items() if k in set(ordered)}
            if not ordered:
                return []
            start = self._turn % len(ordered)
            chosen = (ordered[start:] + ordered[:start])[: max(0, limit)]
            self._turn = start + len(chosen)
        return chosen

    def cursor(self, sandbox_id: str, now: datetime) -> datetime:
        """Where the next read of `sandbox_id` starts (the lookback on its first read)."""
        with self._lock:
            return self._cursors.get(sandbox_id, now - self._lookback)

    def advance(self, sandbox_id: str, line_times: Sequence[datetime], page_full: bool) -> None:
        """Move past the lines just read (oldest first). After a full page the cursor stays
        on its last millisecond, which may hold lines the page cut off."""
        if not line_times:
            return
        last = line_times[-1]
        if not page_full or line_times[0] == last:
            last += timedelta(milliseconds=1)
        with self._lock:
            self._cursors[sandbox_id] = last
