"""The store's speed at full size: 100 M samples (1,000 sandboxes x 5.8 days at 5 s).

Run: `.venv/bin/python bench/storage_bench.py` (about 3 minutes here; `--help` for sizes).
It builds the file under a temporary directory (removed at the end unless `--keep`; reuse a
kept one with `--file`), rolls it up, then times the dashboard's reads and the collector's
insert of one 10,000-sample tick through `MonitorStore`. Progress goes to stderr, the results
table to stdout. What each number means and the recorded results: bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import synthetic
from bench.percentiles import percentile
from storage import MonitorStore
from storage.batches import samples as samples_table
from storage.rows import SampleRow

INTERVAL_S = 5
WARMUP = 3
GIB = 1024**3


@dataclass(frozen=True)
class Result:
    measurement: str
    times_ms: list[float]
    first_ms: float
    target_ms: float | None
    note: str = ""

    def cells(self) -> list[str]:
        median = statistics.median(self.times_ms)
        p90 = percentile(self.times_ms, 90)
        met = "-" if self.target_ms is None else ("yes" if median < self.target_ms else "NO")
        target = "-" if self.target_ms is None else f"< {self.target_ms:g} ms"
        return [
            self.measurement,
            str(len(self.times_ms)),
            f"{self.first_ms:.1f} ms",
            f"{median:.1f} ms",
            f"{p90:.1f} ms",
            target,
            met,
            self.note,
        ]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(
    name: str, call: Callable[[int], object], repeat: int, target_ms: float | None, note: str = ""
) -> Result:
    """Time `call(i)` for i in 0..repeat+WARMUP-1; the first call is reported apart."""
    times = []
    first = 0.0
    for i in range(repeat + WARMUP):
        started = time.perf_counter()
        call(i)
        elapsed = (time.perf_counter() - started) * 1000
        if i == 0:
            first = elapsed
        if i >= WARMUP:
            times.append(elapsed)
    result = Result(name, times, first, target_ms, note)
    say(f"{name}: median {statistics.median(times):.1f} ms")
    return result


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def build(path: Path, sandboxes: int, start: datetime, end: datetime, memory_limit: str) -> None:
    started = time.perf_counter()
    expected = sandboxes * int((end - start).total_seconds()) // INTERVAL_S
    say(f"building {path}: {sandboxes} sandboxes, {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC")

    def progress(chunk_end: datetime, rows: int) -> None:
        elapsed = time.perf_counter() - started
        say(
            f"  {rows / 1e6:6.1f} M of {expected / 1e6:.1f} M rows up to {chunk_end:%m-%d %H:%M}"
            f" | {elapsed:5.0f} s | {rows / elapsed / 1e6:.2f} M rows/s"
            f" | {disk_bytes(path) / 1e9:.2f} GB on disk"
        )

    with MonitorStore.open(path, memory_limit=memory_limit) as store:
        store.upsert_sandboxes(synthetic.sandbox_rows(sandboxes, start, end))
    # Filled over a connection of its own, with the store closed (bench/synthetic.py).
    rows = synthetic.fill_samples(
        path, sandboxes, start, end, INTERVAL_S, timedelta(hours=2), progress, memory_limit
    )
    filled = time.perf_counter() - started
    say(f"filled {rows:,} samples in {filled:.0f} s; rolling up")
    with MonitorStore.open(path, memory_limit=memory_limit) as store:
        rolled_at = time.perf_counter()
        minutes = store.roll_up(end)
        rolled = time.perf_counter() - rolled_at
        per_minute_ms = rolled / max(minutes, 1) * 1000
        say(f"rolled up {minutes:,} minutes in {rolled:.0f} s ({per_minute_ms:.1f} ms a minute)")
    say(f"built in {time.perf_counter() - started:.0f} s; {disk_bytes(path) / 1e9:.2f} GB on disk")


def tick(sandboxes: int, ts: datetime) -> list[SampleRow]:
    """One collector tick: a sample of each of `sandboxes` sandboxes at `ts`."""
    return [
        SampleRow(synthetic.sandbox_id(i), ts, 2, 12.5, GIB // 3, GIB, GIB // 16, GIB, 4 * GIB)
        for i in range(sandboxes)
    ]


def measure(store: MonitorStore, sandboxes: int, now: datetime, repeat: int) -> list[Result]:
    def some_sandbox(i: int) -> str:
        return synthetic.sandbox_id((i * 37) % sandboxes)

    hour, day, week = timedelta(hours=1), timedelta(days=1), timedelta(days=7)
    results = [
        timed(
            "one sandbox, last hour (720 points)",
            lambda i: store.sandbox_series(some_sandbox(i), now - hour, now, 720),
            repeat,
            10,
        ),
        timed(
            "team per-minute usage, 24 h",
            lambda i: store.team_usage(now - day, now, 1440),
            repeat,
            50,
        ),
        timed(
            "one sandbox, week, <= 2,000 points",
            lambda i: store.sandbox_series(some_sandbox(i), now - week, now, 2000),
            repeat,
            100,
        ),
        timed(
            "team usage, week, <= 2,000 points",
            lambda i: store.team_usage(now - week, now, 2000),
            repeat,
            100,
        ),
        timed(
            "triage table, every live sandbox",
            lambda i: store.triage_rows(now),
            repeat,
            None,
        ),
        timed(
            "template fit, week (1,000 sandboxes)",
            lambda i: store.template_fit(now - week, now),
            repeat,
            # The Templates page asks it on every live refresh, which must stay < 300 ms
            # (dashboard_bench.py) with the usage and the metadata keys beside it.
            200,
        ),
        timed(
            "last_sample_at, all sandboxes",
            lambda i: store.last_sample_at([synthetic.sandbox_id(j) for j in range(sandboxes)]),
            repeat,
            None,
        ),
    ]
    ticks = [
        tick(10_000, now + timedelta(seconds=INTERVAL_S * (k + 1))) for k in range(repeat + WARMUP)
    ]
    results.append(
        timed(
            "insert one tick of 10,000 samples",
            lambda i: store.add_samples(ticks[i]),
            repeat,
            50,
            "rows to Arrow + dedup + insert",
        )
    )
    results.append(
        timed(
            "  of which rows to Arrow",
            lambda i: samples_table(ticks[i]),
            repeat,
            None,
        )
    )
    results.append(
        timed(
            "re-send the same tick (all duplicates)",
            lambda i: store.add_samples(ticks[-1]),
            repeat,
            None,
        )
    )
    return results


def print_table(results: list[Result]) -> None:
    header = ["measurement", "n", "first", "median", "p90", "target", "met", "note"]
    rows = [header, *[r.cells() for r in results]]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    for k, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("-+-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandboxes", type=int, default=1000)
    parser.add_argument("--days", type=float, default=5.8)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="where the temp dir goes")
    parser.add_argument("--keep", action="store_true", help="keep the built file")
    parser.add_argument("--file", type=Path, default=None, help="reuse a file built with --keep")
    parser.add_argument("--memory-limit", default="512MB", help="DuckDB's memory_limit")
    args = parser.parse_args(argv)

    workdir = None
    if args.file is not None:
        path = args.file
    else:
        workdir = Path(tempfile.mkdtemp(prefix="sandscope-storage-bench-", dir=args.dir))
        path = workdir / "bench.duckdb"
    try:
        if args.file is None:
            end = datetime.now(UTC).replace(second=0, microsecond=0)
            build(path, args.sandboxes, end - timedelta(days=args.days), end, args.memory_limit)
        with MonitorStore.open(path, memory_limit=args.memory_limit) as store:
            latest = store.last_sample_at([synthetic.sandbox_id(0)])
            now = latest[synthetic.sandbox_id(0)].replace(second=0) + timedelta(minutes=1)
            say(f"measuring at {now:%Y-%m-%d %H:%M} UTC, {disk_bytes(path) / 1e9:.2f} GB on disk")
            busy_before, total_before = cpu_times()
            results = measure(store, args.sandboxes, now, args.repeat)
            busy_after, total_after = cpu_times()
        print_table(results)
        busy_pct = 100 * (busy_after - busy_before) / max(total_after - total_before, 1)
        print(
            f"\nmachine CPU busy while measuring: {busy_pct:.0f} % of all cores"
            f" (load average {os.getloadavg()[0]:.2f} at the end)"
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of the benchmark process: {peak_mb:.0f} MB")
        print(f"file: {disk_bytes(path) / 1e9:.2f} GB on disk")
    finally:
        if workdir is not None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            say(f"removed {workdir}")
        elif workdir is not None:
            say(f"kept {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
