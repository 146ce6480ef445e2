"""The scheduled jobs that fetch, parse and store: poll, team, events, slow, maintenance.

Each job is a plain function of a `JobContext` that returns the rows it wrote. A job raises
what went wrong (an `E2BError`, a `StoreError`); the scheduler's wrapper records it, and
the context's tally keeps the rows a failed run had written already. The backfill and
trouble jobs live in `collectors.backfill` and `collectors.trouble`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from collectors import oom, parse, templates
from collectors.backfill import save_backfill_queue
from collectors.context import JobContext
from collectors.work import Gap, Trouble
from e2bapi import actions
from e2bapi.errors import NotFoundError
from e2bapi.exchange import Exchange
from e2bapi.models.base import ApiModel
from storage.rows import (
    EventRow,
    SampleRow,
    SandboxEndRow,
    SandboxRow,
    TeamMaxMetric,
    TeamMaxRow,
    TeamMaxWindow,
)

log = logging.getLogger(__name__)

TEAM_MAX_METRICS: tuple[TeamMaxMetric, ...] = ("concurrent_sandboxes", "sandbox_start_rate")
TEAM_MAX_WINDOWS: tuple[tuple[TeamMaxWindow, timedelta], ...] = (
    ("1h", timedelta(hours=1)),
    ("24h", timedelta(days=1)),
    ("7d", timedelta(days=7)),
)
# Our clock and the API's may differ a little: killed events are looked for from this much
# before the last sighting of the sandboxes that left the list.
CLOCK_SLACK = timedelta(minutes=2)


def poll(ctx: JobContext) -> int:
    """List running and paused sandboxes, keep their details, end the ones that left the
    list, and store the latest sample of every running one (batch call, 100 IDs per
    request, concurrent). Gaps in a sandbox's samples go to the backfill queue, memory
    near its limit and ends to the trouble watch."""
    now = ctx.clock()
    # After a restart or a failed poll, polls were missed: any gap is a real one.
    gap_after = timedelta(seconds=ctx.config.backfill_gap_s if ctx.backfill.poll_started() else 0)
    listed = parse.sandbox_rows(
        ctx.client.run(actions.list_sandboxes(states=["running", "paused"])), now
    )
    known_live = ctx.store.live_sandbox_ids()
    ctx.wrote(ctx.store.upsert_sandboxes(listed))
    gone = sorted(known_live - {row.sandbox_id for row in listed})
    if gone:
        _end_sandboxes(ctx, gone, now)
    running = {row.sandbox_id: row for row in listed if row.state == "running"}
    if running:
        latest = ctx.batch.run(actions.sandboxes_metrics(list(running)))
        # Samples of IDs not asked for (an API answering more than asked) are not trusted.
        samples = parse.latest_sample_rows({k: v for k, v in latest.items() if k in running})
        _note_gaps(ctx, samples, running, gap_after)
        # Saved before the samples: once they are stored, the gap cannot be seen again.
        save_backfill_queue(ctx)
        ctx.wrote(ctx.store.add_samples(samples))
        for sample in samples:
            ctx.watch.memory_sample(sample.sandbox_id, sample.ts, oom.is_memory_high(sample))
    ctx.backfill.poll_succeeded()
    return ctx.tally.rows


def _note_gaps(
    ctx: JobContext,
    samples: Sequence[SampleRow],
    listed: dict[str, SandboxRow],
    gap_after: timedelta,
) -> None:
    """Queue a backfill for each sandbox whose new sample is more than `gap_after` past its
    last stored one, or that has none stored (seen for the first time: its history from
    its start)."""
    last = ctx.store.last_sample_at([sample.sandbox_id for sample in samples])
    for sample in samples:
        before = last.get(sample.sandbox_id)
        if before is None:
            started_at = listed[sample.sandbox_id].started_at
            ctx.backfill.want(Gap(sample.sandbox_id, started_at, sample.ts))
        elif sample.ts - before > gap_after:
            ctx.backfill.want(Gap(sample.sandbox_id, before, sample.ts))


def _end_sandboxes(ctx: JobContext, gone: Sequence[str], now: datetime) -> None:
    """Mark sandboxes that left the list as ended, with the reason of their killed event
    when the API has one (one paged events call for all of them)."""
    last_known = list(ctx.store.sandbox_records(gone).values())
    if not last_known:
        return
    since = min(row.last_seen_at for row in last_known) - CLOCK_SLACK
    killed_events = ctx.client.run(actions.team_events(types=[parse.KILLED_EVENT], since=since))
    killed = {row.sandbox_id: row for row in parse.event_rows(killed_events)}
    ends = [parse.end_row(row, killed.get(row.sandbox_id), now) for row in last_known]
    # The events themselves are the events job's to store: storing them here would move
    # its "newest stored" mark past events it has not fetched yet.
    ctx.wrote(ctx.store.mark_ended(ends))
    ctx.wrote(ctx.store.add_incidents(oom.confirmed_from_events(killed.values(), now)))
    for end in ends:
        log.info("sandbox %s ended (%s)", end.sandbox_id, end.end_reason or "reason unknown")
        ctx.watch.flag(
            Trouble(
                end.sandbox_id, "ended", end.ended_at or end.last_seen_at, end_reason=end.end_reason
            )
        )


def team(ctx: JobContext) -> int:
    """Store the team's usage buckets (concurrency, start rate) of the last window."""
    now = ctx.clock()
    team_id = ctx.client.resolve_team_id()
    start = now - timedelta(seconds=ctx.config.team_window_s)
    buckets = ctx.client.run(actions.team_metrics(team_id, start=start, end=now))
    return ctx.wrote(ctx.store.add_team_samples(parse.team_sample_rows(buckets)))


def events(ctx: JobContext) -> int:
    """Store the team's lifecycle events since the newest one stored, paging until caught
    up. A killed event ends its sandbox (with its reason) and is a sign of trouble; one
    with kill_reason "oom" is a confirmed OOM incident."""
    now = ctx.clock()
    newest = ctx.store.newest_event_at()
    since = newest or now - timedelta(seconds=ctx.config.events_first_lookback_s)
    rows = parse.event_rows(ctx.client.run(actions.team_events(since=since)))
    ctx.wrote(ctx.store.add_events(rows))
    # Events at exactly `since` were fetched (and handled) by the previous run too.
    killed = [
        row for row in rows if row.kill_reason is not None and (newest is None or row.ts > newest)
    ]
    if killed:
        _apply_kills(ctx, killed, now)
    return ctx.tally.rows


def _apply_kills(ctx: JobContext, killed: Sequence[EventRow], now: datetime) -> None:
    ends: list[SandboxEndRow] = []
    records = ctx.store.sandbox_records(event.sandbox_id for event in killed)
    for event in killed:
        known = records.get(event.sandbox_id)
        if known is not None:
            ends.append(
                SandboxEndRow(event.sandbox_id, known.last_seen_at, event.ts, event.kill_reason)
            )
        ctx.watch.flag(Trouble(event.sandbox_id, "ended", event.ts, end_reason=event.kill_reason))
    ctx.wrote(ctx.store.mark_ended(ends))
    ctx.wrote(ctx.store.add_incidents(oom.confirmed_from_events(killed, now)))


def slow(ctx: JobContext) -> int:
    """Team maxima over the last hour, day and week, the template catalog
    (`collectors.templates`) and a snapshot of the webhook list. An API without one of
    those lists is skipped."""
    now = ctx.clock()
    team_id = ctx.client.resolve_team_id()
    maxima: list[TeamMaxRow] = []
    for metric in TEAM_MAX_METRICS:
        for window, length in TEAM_MAX_WINDOWS:
            peak = ctx.client.run(
                actions.team_max_metric(team_id, metric, start=now - length, end=now)
            )
            maxima.append(parse.team_max_row(metric, window, peak, now))
    ctx.wrote(ctx.store.add_team_maxima(maxima))
    templates.collect_catalog(ctx, now)
    _snapshot(ctx, "webhooks", actions.list_webhooks(), now)
    return ctx.tally.rows


def _snapshot(
    ctx: JobContext, kind: str, action: Exchange[Sequence[ApiModel]], now: datetime
) -> None:
    try:
        items = ctx.client.run(action)
    except NotFoundError:
        log.debug("the API has no %s list; no snapshot", kind)
        return
    ctx.store.save_snapshot(kind, parse.snapshot_json(items), now)
    ctx.wrote(1)


def maintenance(ctx: JobContext) -> int:
    """Roll raw samples up into per-minute rows, then drop what is past retention."""
    now = ctx.clock()
    rolled = ctx.store.roll_up(now)
    ctx.store.forget_old(now, ctx.config.raw_retention_days, ctx.config.rollup_retention_days)
    return ctx.wrote(rolled)
