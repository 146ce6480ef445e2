"""The collector at 10,000 running sandboxes: one poll tick, its insert, and the memory.

    .venv/bin/python bench/collector_bench.py                 # about 2 minutes
    .venv/bin/python bench/collector_bench.py --sandboxes 1000 --ticks 5 --monitor-s 20

A fake E2B API (`bench/fake_e2b.py`, its own process on 127.0.0.1) serves N running
sandboxes. This process is the monitor: the real `Collector`, its clients and a DuckDB file
in a temporary directory. Measured:

1. One poll tick as the scheduler runs it (`Collector.run_now("poll")`): list every page,
   the batch metrics of every sandbox (N/100 requests on the async client), upsert the
   sandboxes, compare with the last stored samples, insert the new samples, record the run.
   Ticks are one second apart, so every tick brings a new sample of every sandbox.
2. The same tick's steps timed one by one, with the same calls the poll job makes:
   the insert alone is `add_samples` of the tick's N rows.
3. The monitor running every job on its scheduler for `--monitor-s` seconds (polls every
   5 s, the backfill of N first-seen sandboxes, the log sweep, ...): poll run times from
   the runs table and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.fake_e2b import TEAM_ID  # noqa: E402
from bench.percentiles import percentile  # noqa: E402
from collectors import parse  # noqa: E402
from collectors.config import CollectorConfig  # noqa: E402
from collectors.context import JobContext  # noqa: E402
from collectors.scheduler import Collector  # noqa: E402
from e2bapi import AsyncE2BClient, E2BClient, actions  # noqa: E402
from storage import MonitorStore  # noqa: E402

API_KEY = "e2b_" + "0" * 40


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def fake_api(count: int, *options: str) -> Iterator[str]:
    """Start the fake API (`count` running sandboxes, then fake_e2b.py's other `options`)
    in its own process; yields its URL."""
    fake = str(REPOSITORY / "bench" / "fake_e2b.py")
    process = subprocess.Popen(
        [sys.executable, fake, "--sandboxes", str(count), *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"the fake API did not start: {line!r}")
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def make_collector(url: str, db_path: Path, config: CollectorConfig) -> Collector:
    headers = {"X-API-Key": API_KEY}
    return Collector(
        MonitorStore.open(db_path),
        E2BClient(httpx.Client(base_url=url, headers=headers), team_id=TEAM_ID),
        AsyncE2BClient(httpx.AsyncClient(base_url=url, headers=headers), team_id=TEAM_ID),
        config,
    )


def next_second() -> None:
    """Sleep into the next whole second (+50 ms): the fake API stamps samples per second."""
    time.sleep(1.05 - time.time() % 1.0)


class Stopwatch:
    """Milliseconds per named step, one entry per time the step ran."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.ms[name].append((time.perf_counter() - start) * 1000)


def bench_ticks(url: str, workdir: Path, ticks: int) -> dict[str, list[float]]:
    """Full poll ticks, then the same steps timed one by one. Milliseconds per step."""
    collector = make_collector(url, workdir / "ticks.duckdb", CollectorConfig())
    watch = Stopwatch()
    try:
        for tick in range(ticks + 1):
            next_second()
            with watch.step("first tick (cold)" if tick == 0 else "poll tick"):
                run = collector.run_now("poll")
            assert run.error is None, run.error
            progress(f"tick {tick}: {run.rows_written} rows")
        for _ in range(ticks):
            next_second()
            time_steps(collector.context, watch)
    finally:
        collector.stop()
    return watch.ms


def time_steps(ctx: JobContext, watch: Stopwatch) -> None:
    """The poll's calls, one by one."""
    with watch.step("list"):
        listed = ctx.client.run(actions.list_sandboxes(["running"]))
    ids = [sandbox.sandbox_id for sandbox in listed]
    with watch.step("batch metrics"):
        latest = ctx.batch.run(actions.sandboxes_metrics(ids))
    with watch.step("parse"):
        sandbox_rows = parse.sandbox_rows(listed, datetime.now(UTC))
        sample_rows = parse.latest_sample_rows(latest)
    with watch.step("upsert"):
        ctx.store.upsert_sandboxes(sandbox_rows)
    with watch.step("last_sample_at"):
        ctx.store.last_sample_at(ids)
    with watch.step("insert"):
        inserted = ctx.store.add_samples(sample_rows)
    assert inserted == len(ids), (inserted, len(ids))


def bench_monitor(url: str, workdir: Path, seconds: float) -> dict[str, object]:
    """Every job on the scheduler for `seconds`. Poll run times (ms) while the backfill of
    the N first-seen sandboxes was still going and after it, failures, samples backfilled."""
    db_path = workdir / "monitor.duckdb"
    collector = make_collector(url, db_path, CollectorConfig())
    caught_up_at: list[datetime] = []
    pending_seen = False
    collector.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.2)
            pending = len(collector.context.backfill)
            pending_seen = pending_seen or pending > 0
            if pending_seen and not caught_up_at and pending == 0:
                caught_up_at.append(datetime.now(UTC))
    finally:
        collector.stop()
    with duckdb.connect(str(db_path), read_only=True) as con:
        polls = con.execute(
            "SELECT started_at, epoch_ms(ended_at) - epoch_ms(started_at), error "
            "FROM collector_runs WHERE job = 'poll' ORDER BY started_at"
        ).fetchall()
        backfilled = con.execute(
            "SELECT coalesce(sum(rows_written), 0) FROM collector_runs WHERE job = 'backfill'"
        ).fetchone()
        errors = con.execute(
            "SELECT job, count(*) FROM collector_runs WHERE error IS NOT NULL GROUP BY job"
        ).fetchall()
    split = caught_up_at[0] if caught_up_at else None
    return {
        "during backfill": [float(ms) for at, ms, _ in polls if split is None or at < split],
        "after backfill": [float(ms) for at, ms, _ in polls if split is not None and at >= split],
        "caught up after s": None if split is None else (split - polls[0][0]).total_seconds(),
        "failed runs": dict(errors),
        "backfilled": int(backfilled[0]) if backfilled else 0,
    }


def row(name: str, values: list[float], target: str = "-", limit_ms: float | None = None) -> str:
    median = statistics.median(values)
    p90 = percentile(values, 90)
    met = "-" if limit_ms is None else ("yes" if median < limit_ms else "NO")
    return (
        f"{name:<38} | {len(values):>3} | {median:8.1f} ms | {p90:8.1f} ms | {target:<10} | {met}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the collector against a fake E2B API.")
    parser.add_argument("--sandboxes", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--monitor-s", type=float, default=60.0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fake_api(arguments.sandboxes) as url:
        workdir = Path(tmp)
        progress(f"fake API with {arguments.sandboxes} running sandboxes at {url}")
        ticks = bench_ticks(url, workdir, arguments.ticks)
        rss_after_ticks_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        progress(f"monitor with every job for {arguments.monitor_s:g} s")
        monitor = bench_monitor(url, workdir, arguments.monitor_s)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"N = {arguments.sandboxes} running sandboxes; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'measurement':<38} |   n |   median    |   p90       | target     | met")
    print("-" * 39 + "+-----+-------------+-------------+------------+----")
    print(row("poll tick (full)", ticks["poll tick"], "< 1 s", 1000))
    print(row("first tick (cold)", ticks["first tick (cold)"]))
    for step in ("list", "batch metrics", "parse", "upsert", "last_sample_at"):
        print(row(f"  {step}", ticks[step]))
    print(row("  insert (add_samples)", ticks["insert"], "< 50 ms", 50))
    for phase in ("during backfill", "after backfill"):
        polls = monitor[phase]
        assert isinstance(polls, list)
        if polls:
            print(row(f"poll runs, all jobs, {phase}", polls, "< 1 s", 1000))
    print(
        f"backfill of the first-seen sandboxes done after: {monitor['caught up after s']} s; "
        f"samples backfilled: {monitor['backfilled']}; failed runs: {monitor['failed runs']}"
    )
    print(
        f"peak RSS of the monitor: {peak_rss_mb:.0f} MB "
        f"(after the ticks: {rss_after_ticks_mb:.0f} MB); target < 1024 MB: "
        f"{'yes' if peak_rss_mb < 1024 else 'NO'}"
    )


if __name__ == "__main__":
    main()
