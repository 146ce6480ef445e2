"""Work one job finds for another, kept in memory between runs (thread-safe).

The poll job notices gaps in a sandbox's samples and signs of trouble (memory near its
limit, an end); the events job notices kills; the trouble job's log sweep notices OOM
lines. The backfill and trouble jobs take that work in later runs; signs of trouble in
the present go before history (`TroubleWatch`). The backfill queue is
also saved in the store (`to_json`/`load_json`) before the samples that reveal a gap are
written, so a kill -9 between the poll and the backfill loses no gap.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

TroubleKind = Literal["oom_line", "ended", "memory_high", "memory_settled"]
_HANDLED_KEPT = 10_000
# An end this recent when it is flagged is live: the poll and the events job see a kill
# within seconds, and a monitor restarted within this long still treats the ends it missed
# as live. Older ends (a day of them read back on a first start) are history.
LIVE_WINDOW = timedelta(minutes=10)
# History signs kept waiting, the newest first: at 5 a run every 5 s, about 2.8 h of
# catching up, and about 4 MB. An end forgotten here still has its killed event and, when
# that says "oom", its confirmed incident: only the look at its logs and samples is lost.
HISTORY_SIGNS_KEPT = 10_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


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


_SignKey = tuple[str, TroubleKind, datetime]


def _key(trouble: Trouble) -> _SignKey:
    return (trouble.sandbox_id, trouble.kind, trouble.at)


def _order(trouble: Trouble) -> tuple[datetime, str, str]:
    return (trouble.at, trouble.sandbox_id, trouble.kind)


class TroubleWatch:
    """Signs of trouble waiting for the trouble job, and which sandboxes run high now.

    Signs wait in two lanes, so history never holds up the present. Live: a live
    sandbox's OOM line or memory sign, and any end at most `live_window` before the clock
    when it is flagged. History: older ends, such as a day of them read back by the events
    job on a first start. Each run takes the live signs first (oldest first) and a bounded
    share of history (newest first: its logs and samples are the likeliest to be kept
    still); history keeps at most `history_kept` signs and forgets the oldest beyond that.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] = _utc_now,
        live_window: timedelta = LIVE_WINDOW,
        history_kept: int = HISTORY_SIGNS_KEPT,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._live_window = live_window
        self._history_kept = history_kept
        self._live: dict[_SignKey, Trouble] = {}
        self._history: dict[_SignKey, Trouble] = {}
        # History in time order (oldest first): the newest are taken, the oldest forgotten.
        self._history_order: list[tuple[datetime, str, str]] = []
        self._history_dropped = 0
        self._high_since: dict[str, datetime] = {}
        # Signs already handled, so one seen twice (an end noticed by the poll and by the
        # events job) is handled once; the oldest are forgotten first.
        self._handled: dict[_SignKey, None] = {}

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
        if _key(trouble) not in self._handled:
            self._queue_locked(trouble)

    def _queue_locked(self, trouble: Trouble) -> None:
        key = _key(trouble)
        if key in self._live or key in self._history:
            return
        if trouble.kind != "ended" or trouble.at >= self._clock() - self._live_window:
            self._live[key] = trouble
            return
        self._history[key] = trouble
        bisect.insort(self._history_order, _order(trouble))
        if len(self._history_order) > self._history_kept:
            at, sandbox_id, kind = self._history_order.pop(0)
            del self._history[(sandbox_id, cast(TroubleKind, kind), at)]
            self._history_dropped += 1

    def take(self, limit: int, history_limit: int) -> list[Trouble]:
        """Up to `limit` signs, which leave the queue: the live ones first, oldest first,
        then history, newest first. History gets up to `history_limit` of them even when
        live signs would fill the run (so it drains under any live load), and never more
        (so it never makes a run long)."""
        with self._lock:
            history_count = min(history_limit, len(self._history), limit)
            live = sorted(self._live.values(), key=lambda t: t.at)[: limit - history_count]
            for trouble in live:
                del self._live[_key(trouble)]
            history: list[Trouble] = []
            for _ in range(history_count):
                at, sandbox_id, kind = self._history_order.pop()
                history.append(self._history.pop((sandbox_id, cast(TroubleKind, kind), at)))
            taken = live + history
            for trouble in taken:
                self._handled[_key(trouble)] = None
            while len(self._handled) > _HANDLED_KEPT:
                del self._handled[next(iter(self._handled))]
        return taken

    def put_back(self, troubles: Iterable[Trouble]) -> None:
        """Return signs not handled, e.g. after a failure (each to the lane it is in now)."""
        with self._lock:
            for trouble in troubles:
                self._handled.pop(_key(trouble), None)
                self._queue_locked(trouble)

    def waiting(self) -> tuple[int, int]:
        """How many live and history signs wait."""
        with self._lock:
            return len(self._live), len(self._history)

    def dropped_history(self) -> int:
        """How many history signs were forgotten (over `history_kept`) since last asked."""
        with self._lock:
            dropped, self._history_dropped = self._history_dropped, 0
        return dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._live) + len(self._history)


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
