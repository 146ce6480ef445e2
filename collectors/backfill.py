"""The backfill job: fetch the samples a sandbox's gap is missing from its history.

A gap comes from the poll job: a sandbox seen for the first time (its history from its
start), or a new sample far from the last stored one (the collector or the API was down).
The API answers ranges under an hour with raw 5 s samples and longer ones with per-bucket
maxima, so a gap is fetched in windows under an hour: stored rows stay raw samples, and the
store drops any it has already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from collectors import parse
from collectors.context import JobContext
from collectors.work import Gap
from e2bapi import actions
from e2bapi.errors import E2BError, NotFoundError
from storage.rows import SampleRow

log = logging.getLogger(__name__)

# The API's raw-sample step holds for ranges under an hour (docs/E2B-API.md, "Metrics").
RAW_WINDOW = timedelta(seconds=3599)


BACKFILL_QUEUE_SNAPSHOT = "backfill_gaps"


def save_backfill_queue(ctx: JobContext) -> None:
    """Keep the waiting gaps in the store, so a restart fetches them too."""
    ctx.store.save_snapshot(BACKFILL_QUEUE_SNAPSHOT, ctx.backfill.to_json(), ctx.clock())


def backfill(ctx: JobContext) -> int:
    """Fetch waiting gaps, at most `backfill_requests_per_run` requests; the rest waits for
    the next run. A gap whose sandbox the API no longer knows is dropped. The samples go to
    the store in batches (one transaction per `FLUSH_ROWS`, not one per request), and what
    was fetched is stored even when a later request fails. Returns rows written."""
    now = ctx.clock()
    oldest_kept = now - timedelta(days=ctx.config.raw_retention_days)
    fetched = _Fetched(ctx)
    waiting = ctx.backfill.take(ctx.config.backfill_requests_per_run)
    budget = ctx.config.backfill_requests_per_run
    try:
        while waiting and budget > 0 and not ctx.stopping.is_set():
            gap = waiting.pop(0)
            budget, rest = _fetch_gap(
                ctx, replace(gap, since=max(gap.since, oldest_kept)), budget, fetched
            )
            if rest is not None:
                waiting.insert(0, rest)
    finally:
        ctx.backfill.put_back(waiting)
        fetched.flush()
        # After the samples: a kill before this refetches a gap, and the store dedups.
        save_backfill_queue(ctx)
    return ctx.tally.rows


# Samples stored per transaction: big enough to amortise the dedup check, small enough
# that a backfill never holds the writer lock long against the poll.
FLUSH_ROWS = 5000


class _Fetched:
    """Samples fetched but not stored yet."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._rows: list[SampleRow] = []

    def add(self, rows: list[SampleRow]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        self._ctx.wrote(self._ctx.store.add_samples(rows))


def _fetch_gap(ctx: JobContext, gap: Gap, budget: int, fetched: _Fetched) -> tuple[int, Gap | None]:
    """Fetch `gap` window by window while the budget lasts; returns the budget left and the
    part of the gap still to fetch (None when done or the sandbox is gone). On a failure
    the unfetched part goes back to the queue."""
    for start, end in windows(gap.since, gap.until):
        if budget <= 0 or ctx.stopping.is_set():
            return budget, Gap(gap.sandbox_id, start, gap.until)
        budget -= 1
        try:
            history = ctx.client.run(actions.sandbox_metrics(gap.sandbox_id, start, end))
        except NotFoundError:
            log.debug("no history for %s: the API no longer knows it", gap.sandbox_id)
            return budget, None
        except E2BError:
            ctx.backfill.want(Gap(gap.sandbox_id, start, gap.until))
            raise
        fetched.add(parse.history_rows(gap.sandbox_id, history))
    return budget, None


def windows(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[since, until] in consecutive windows under an hour each (the API takes whole
    seconds, both ends inclusive, so windows start one second after the previous end)."""
    start = since
    while start <= until:
        end = min(start + RAW_WINDOW, until)
        yield start, end
        start = end + timedelta(seconds=1)
