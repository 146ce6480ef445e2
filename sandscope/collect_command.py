"""`sandscope collect`: the collectors without the UI, until SIGINT or SIGTERM (or after
one round of every job with `--once`).

It collects from the API `sandscope.target` finds: E2B with E2B_API_KEY, else the sandboxd
that serves from SANDSCOPE_SANDBOXD_DATA_DIR (the one `sandscope run` or `sandscope sandboxd`
started), whatever ports it took.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC
from types import FrameType
from typing import IO

from collectors.config import CollectorConfig
from collectors.scheduler import Collector, RunListener, stop_aware_sleeps
from sandscope.clients import open_async_client, open_client
from sandscope.settings import Settings
from sandscope.target import TargetError, require_target
from storage import MonitorStore, StoreError
from storage.rows import CollectorRun

EXIT_FAILED = 1  # the store is in use; with `--once`, a job failed or a signal cut it short
EXIT_SETTINGS = 2


def collector_config(settings: Settings) -> CollectorConfig:
    """The jobs' intervals from the settings: team, trouble and backfill follow the poll."""
    poll_s = settings.poll_interval_s
    return CollectorConfig(
        poll_interval_s=poll_s,
        team_interval_s=poll_s,
        trouble_interval_s=poll_s,
        backfill_interval_s=poll_s,
        events_interval_s=settings.events_interval_s,
        slow_interval_s=settings.slow_interval_s,
        maintenance_interval_s=settings.maintenance_interval_s,
        raw_retention_days=settings.raw_retention_days,
        rollup_retention_days=settings.rollup_retention_days,
        # Two missed samples at 5 s, or two missed polls when polls are further apart.
        backfill_gap_s=max(CollectorConfig().backfill_gap_s, 2 * poll_s + 2),
    )


def run_collect(settings: Settings, out: IO[str], err: IO[str], *, once: bool = False) -> int:
    """Collect until SIGINT/SIGTERM, or (`once`) run every job once; 0 after a clean stop or
    when every job of `once` succeeded, 1 if the store cannot be opened (another process
    holds it) or a job of `once` failed, 2 when there is no API to collect from."""
    try:
        target = require_target(settings)
    except TargetError as no_target:
        print(f"sandscope: {no_target}", file=err)
        return EXIT_SETTINGS
    try:
        store = MonitorStore.open(settings.db_path)
    except StoreError as unusable:
        print(f"sandscope: {unusable}", file=err)
        return EXIT_FAILED
    quiet_library_logs()
    printer = RunPrinter(out)
    collector = build_collector(store, target.applied_to(settings), printer.print_run)
    stop = _stop_on_signals()
    printer.say(f"collecting from {target.describe()}")
    if once:
        return _collect_once(collector, stop, printer, settings)
    config = collector.config
    intervals = ", ".join(f"{name} {config.interval_s(name):g} s" for name in collector.job_names)
    printer.say(f"into {settings.db_path}; jobs: {intervals}; Ctrl-C stops")
    collector.start()
    while not stop.wait(1.0):
        pass
    printer.say("stopping: finishing the runs in progress, then closing the store")
    collector.stop()
    printer.say("stopped")
    return 0


def _collect_once(
    collector: Collector, stop: threading.Event, printer: RunPrinter, settings: Settings
) -> int:
    """Every job once, in schedule order, in this thread; a signal skips the jobs not yet
    begun. Each job is bounded as on the schedule (its requests by the timeout and retry
    settings, its work per run by `CollectorConfig`). 0 when all ran and succeeded."""
    printer.say(f"into {settings.db_path}; each job once")
    failed = []
    try:
        for name in collector.job_names:
            if stop.is_set():
                printer.say("stopping: the remaining jobs are skipped")
                return EXIT_FAILED
            if collector.run_now(name).error is not None:
                failed.append(name)
    finally:
        collector.stop()
    printer.say(f"done; failed: {', '.join(failed)}" if failed else "done")
    return EXIT_FAILED if failed else 0


def quiet_library_logs() -> None:
    """The scheduler and the HTTP client log every run and request at INFO; the monitor's
    own lines say the same once per run."""
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def build_collector(store: MonitorStore, settings: Settings, on_run: RunListener) -> Collector:
    """A Collector on `store` reading the API of `settings` (its key, URL and team filled
    in), its intervals from `collector_config`; its clients' retry waits end when it stops.
    Not started."""
    stopping = threading.Event()
    sleep, async_sleep = stop_aware_sleeps(stopping)
    return Collector(
        store,
        open_client(settings, sleep=sleep),
        open_async_client(settings, sleep=async_sleep),
        collector_config(settings),
        on_run=on_run,
        stopping=stopping,
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


class RunPrinter:
    """One compact line per finished run (or per failure and recovery), from any thread."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    def say(self, line: str) -> None:
        with self._lock:
            print(line, file=self._out, flush=True)

    def print_run(self, run: CollectorRun, delay_s: float | None) -> None:
        """`12:00:05 poll         ok   42 rows  0.21 s`, or the error and the next try."""
        took_s = (run.ended_at - run.started_at).total_seconds()
        when = run.started_at.astimezone(UTC).strftime("%H:%M:%S")
        status = "ok" if run.error is None else "FAILED"
        line = f"{when} {run.job:<12} {status:<6} {run.rows_written:>6} rows {took_s:6.2f} s"
        if run.error is not None:
            line += f"  {run.error}"
            if delay_s is not None:
                line += f" (next try in {delay_s:g} s)"
        self.say(line)

    def print_trouble(self, run: CollectorRun, delay_s: float | None) -> None:
        """Only failed runs, and the first success of a job after it failed: for `run`,
        whose terminal shows the dashboard's URL and should stay quiet while all is well."""
        with self._lock:
            recovered = run.error is None and run.job in self._failing
            if run.error is None:
                self._failing.discard(run.job)
            else:
                self._failing.add(run.job)
        if run.error is not None:
            self.print_run(run, delay_s)
        elif recovered:
            when = run.started_at.astimezone(UTC).strftime("%H:%M:%S")
            self.say(f"{when} {run.job:<12} ok again")
