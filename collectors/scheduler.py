"""`Collector`: the jobs on an APScheduler 3.x `BackgroundScheduler`, each run recorded.

Every job is an interval job with `max_instances=1` (a slow run is never overlapped by the
next), `coalesce=True` (runs missed while busy become one) and a misfire grace of one
interval. Each job has its own worker thread, so a slow or failing job never holds up the
others. The wrapper around a job is the one place a job's exceptions are caught: it
records the run (start, end, rows, error) and backs the job off after a failure: the next
run waits interval x 2^(failures-1), at most `max_backoff_s`, or the server's Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from collectors import jobs
from collectors.async_actions import AsyncActions
from collectors.backfill import BACKFILL_QUEUE_SNAPSHOT, backfill
from collectors.config import CollectorConfig
from collectors.context import Clock, JobContext
from collectors.trouble import trouble
from collectors.work import BackfillQueue, LogSweep, TroubleWatch
from e2bapi import AsyncE2BClient, E2BClient
from e2bapi.errors import E2BError, RateLimitedError
from storage.errors import StoreError
from storage.rows import CollectorRun
from storage.store import MonitorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    """A job: its name (also its `*_interval_s` in the config), its function, and how far
    into its interval it first runs (a fraction of it)."""

    name: str
    run: Callable[[JobContext], int]
    phase: float = 0.0


# The poll is the job whose latency shows; the jobs that follow up on its findings
# (backfill, trouble) and the heavy ones run half an interval later, not on top of it.
JOBS: tuple[JobSpec, ...] = (
    JobSpec("poll", jobs.poll),
    JobSpec("team", jobs.team, 0.25),
    JobSpec("events", jobs.events, 0.25),
    JobSpec("trouble", trouble, 0.5),
    JobSpec("backfill", backfill, 0.5),
    JobSpec("slow", jobs.slow, 0.1),
    JobSpec("maintenance", jobs.maintenance, 0.6),
)

RunListener = Callable[[CollectorRun, float | None], None]
"""Told of every finished run, and of the delay (s) before the next one after a failure."""


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def backoff_s(
    interval_s: float, failures: int, retry_after_s: float | None, max_backoff_s: float
) -> float:
    """Seconds until a job's next run after its `failures`-th failure in a row: the
    server's Retry-After when it gave one, else interval x 2^(failures-1), capped."""
    if retry_after_s is not None:
        return max(interval_s, retry_after_s)
    return min(interval_s * 2.0 ** max(0, failures - 1), max(max_backoff_s, interval_s))


def stop_aware_sleeps(
    stopping: threading.Event,
) -> tuple[Callable[[float], None], Callable[[float], Awaitable[None]]]:
    """Sleep functions for the sync and async clients' retries that return early once
    `stopping` is set, so stopping never waits out a retry's backoff."""

    def sleep(seconds: float) -> None:
        stopping.wait(seconds)

    async def async_sleep(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))

    return sleep, async_sleep


class Collector:
    """The collector of one monitor process: owns the scheduler, the store and the clients
    (and closes them in `stop`)."""

    def __init__(
        self,
        store: MonitorStore,
        client: E2BClient,
        async_client: AsyncE2BClient,
        config: CollectorConfig | None = None,
        *,
        clock: Clock = utc_now,
        on_run: RunListener | None = None,
        job_specs: Sequence[JobSpec] = JOBS,
        stopping: threading.Event | None = None,
    ) -> None:
        """`stopping` is set by `stop()`; pass the event the clients' retry sleeps wait on
        (see `stop_aware_sleeps`) so a stop cuts their waits short."""
        self.config = config or CollectorConfig()
        self._actions = AsyncActions(async_client)
        self.context = JobContext(
            client=client,
            batch=self._actions,
            store=store,
            clock=clock,
            config=self.config,
            backfill=_saved_backfill_queue(store),
            watch=TroubleWatch(clock),
            sweep=LogSweep(timedelta(seconds=self.config.log_sweep_lookback_s)),
            stopping=stopping if stopping is not None else threading.Event(),
        )
        self._on_run = on_run
        self._specs = {spec.name: spec for spec in job_specs}
        self._failures = dict.fromkeys(self._specs, 0)
        # When each job may run next after a failure. The scheduler's own next run time is
        # moved too, but it may be written back by the scheduler thread right after a very
        # quick failure, so the wrapper also checks this.
        self._not_before: dict[str, datetime] = {}
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(len(self._specs))}
        )
        self._scheduler.add_listener(
            self._on_scheduler_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self._stopped = False

    @property
    def job_names(self) -> list[str]:
        """The jobs, in the order they are scheduled."""
        return list(self._specs)

    def start(self) -> None:
        """Schedule every job: its first run within its first interval (the poll at once),
        then every interval."""
        now = datetime.now(UTC)
        for spec in self._specs.values():
            interval_s = self.config.interval_s(spec.name)
            first_run = now + timedelta(seconds=spec.phase * min(interval_s, 60.0))
            self._scheduler.add_job(
                self._scheduled_run,
                "interval",
                args=[spec.name],
                id=spec.name,
                name=spec.name,
                seconds=interval_s,
                next_run_time=first_run,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, math.ceil(interval_s)),
            )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop scheduling, let running jobs finish what they write (they stop between
        requests), then close the clients and the store. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.context.stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        try:
            self.context.client.close()
            self._actions.close()
        finally:
            self.context.store.close()

    def _scheduled_run(self, name: str) -> None:
        not_before = self._not_before.get(name)
        if not_before is not None and datetime.now(UTC) < not_before:
            return  # still backing off
        self.run_now(name)

    def run_now(self, name: str) -> CollectorRun:
        """Run job `name` once in this thread, record the run and return it."""
        spec = self._specs[name]
        ctx = self.context.for_run()
        started_at = ctx.clock()
        error: str | None = None
        retry_after_s: float | None = None
        try:
            rows = spec.run(ctx)
        except Exception as failure:  # the job boundary: record it, back off, carry on
            rows = ctx.tally.rows
            error = f"{type(failure).__name__}: {failure}"
            if isinstance(failure, RateLimitedError):
                retry_after_s = failure.retry_after_s
            if isinstance(failure, E2BError | StoreError):
                log.warning("job %s failed: %s", name, error)
            else:
                log.exception("job %s failed unexpectedly", name)
        run = CollectorRun(name, started_at, ctx.clock(), rows, error, retry_after_s)
        delay_s = self._after(run)
        self.context.store.record_run(run)  # a failure here reaches the listener
        if self._on_run is not None:
            self._on_run(run, delay_s)
        return run

    def _after(self, run: CollectorRun) -> float | None:
        """Count the run's failure (or reset the count) and push the job's next run back
        when it failed; returns the delay in seconds, None after a success."""
        if run.error is None:
            self._failures[run.job] = 0
            self._not_before.pop(run.job, None)
            return None
        self._failures[run.job] += 1
        interval_s = self.config.interval_s(run.job)
        delay_s = backoff_s(
            interval_s, self._failures[run.job], run.retry_after_s, self.config.max_backoff_s
        )
        if delay_s > interval_s:
            # A little early, so the run due at that time is not the one skipped.
            next_run = datetime.now(UTC) + timedelta(seconds=delay_s)
            self._not_before[run.job] = next_run - timedelta(seconds=min(0.1, interval_s / 4))
            if self._scheduler.running and not self.context.stopping.is_set():
                self._scheduler.modify_job(run.job, next_run_time=next_run)
        return delay_s

    def _on_scheduler_event(self, event: JobEvent) -> None:
        if isinstance(event, JobExecutionEvent) and event.exception is not None:
            # Only the wrapper itself can fail here (recording the run, e.g. the store
            # closed under it): the job's own errors were caught and recorded.
            log.error("job %s could not be recorded: %r", event.job_id, event.exception)
        elif event.code == EVENT_JOB_MISSED:
            log.info("job %s missed a run (the machine was too busy)", event.job_id)
        else:
            log.debug("job %s still running at its next run time; that run skipped", event.job_id)


def _saved_backfill_queue(store: MonitorStore) -> BackfillQueue:
    """The gaps a previous run saved but had not fetched yet."""
    queue = BackfillQueue()
    queue.load_json(store.snapshot(BACKFILL_QUEUE_SNAPSHOT))
    return queue
