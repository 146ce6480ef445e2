"""The dashboard's speed at full size: every page's first render and live refresh.

Full size is 1,000 sandboxes and 7 days of 5 s samples (121 M rows). Run:
`.venv/bin/python bench/dashboard_bench.py` (about 2.5 minutes here, half of it the build;
`--help` for sizes). The store is built under `--data-dir` (kept there and reused by later
runs with the same sizes) or in a temporary directory removed at the end unless `--keep`.
First renders run the real app under Streamlit's `AppTest`; live refreshes call what each
page's `@st.fragment` calls, plus the serialisation `st.plotly_chart` / `st.dataframe` do.
Progress goes to stderr, the table to stdout. What each number means: bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import logging
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dashboard_data
from dashboard_data import Dataset
from dashboard_live import CONCURRENCY_LIMIT, LIVE, POLL_INTERVAL_S, LiveCall, Parts, TimedStore
from percentiles import percentile
from streamlit.testing.v1 import AppTest

from dashboard.serving import runtime
from dashboard.serving.auth import Logins
from storage import MonitorStore

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
FIRST_RENDER_MS = 1000.0
WARMUP = 1


@dataclass(frozen=True)
class Result:
    measurement: str
    times_ms: list[float]
    first_ms: float
    target_ms: float | None
    note: str = ""

    @property
    def p95_ms(self) -> float:
        return percentile(self.times_ms, 95)

    @property
    def met(self) -> bool:
        """Met when the p95 is under the target: the issue asks it of each refresh."""
        return self.target_ms is None or self.p95_ms < self.target_ms

    def cells(self) -> list[str]:
        target = "-" if self.target_ms is None else f"< {self.target_ms:g} ms"
        met = "-" if self.target_ms is None else ("yes" if self.met else "NO")
        return [
            self.measurement,
            str(len(self.times_ms)),
            f"{self.first_ms:.0f} ms",
            f"{statistics.median(self.times_ms):.0f} ms",
            f"{self.p95_ms:.0f} ms",
            target,
            met,
            self.note,
        ]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PageCase:
    """A page opened at its URL: `query` may name "<detail>" or "<incident>"; `state` is
    session state set before the first run (the range picker's choice)."""

    name: str
    page: str
    query: dict[str, str]
    state: dict[str, str]


PAGES = [
    PageCase("overview, 1 h", "overview", {}, {}),
    PageCase("overview, 7 d", "overview", {}, {"overview_range": "7 d"}),
    PageCase("sandboxes", "sandboxes", {}, {}),
    PageCase("sandbox detail, 15 min", "sandbox", {"id": "<detail>"}, {}),
    PageCase("sandbox detail, 7 d", "sandbox", {"id": "<detail>"}, {"detail_range": "7 d"}),
    PageCase("incidents + one opened", "incidents", {"incident": "<incident>"}, {}),
    PageCase("events and audit", "events", {}, {}),
]


# ---- measuring ----------------------------------------------------------------------------


def repeat(
    name: str, call: Callable[[], float], runs: int, target_ms: float | None, note: str = ""
) -> Result:
    """`call()` measures itself (seconds); the first call is a warm-up, reported apart."""
    times: list[float] = []
    first = 0.0
    for i in range(runs + WARMUP):
        elapsed_ms = call() * 1000
        if i == 0:
            first = elapsed_ms
        if i >= WARMUP:
            times.append(elapsed_ms)
    result = Result(name, times, first, target_ms, note)
    say(f"{name}: median {statistics.median(times):.0f} ms, p95 {result.p95_ms:.0f} ms")
    return result


def new_app(ds: Dataset, case: PageCase) -> AppTest:
    """A new session opening the page directly (as a browser at its URL would)."""
    app = AppTest.from_file(str(APP), default_timeout=120)
    for name, value in case.query.items():
        value = value.replace("<detail>", ds.detail_id)
        app.query_params[name] = value.replace("<incident>", ds.incident_key)
    for key, value in case.state.items():
        app.session_state[key] = value
    if case.page != "overview":
        app.switch_page(f"{case.page}/page.py")
    return app


def run_app(app: AppTest) -> float:
    """Seconds of one script run; a page that shows an error or raises fails the benchmark."""
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    problems = [str(e.value) for e in app.exception] + [str(e.value) for e in app.error]
    if problems:
        raise RuntimeError(f"the page failed: {problems[0]}")
    return elapsed


def render_rows(ds: Dataset, runs: int) -> list[Result]:
    """First render of each page in a new session, then whole-page reruns of one session."""
    results = [
        repeat(f"{case.name}: first render", first_render(ds, case), runs, FIRST_RENDER_MS)
        for case in PAGES
    ]
    trivial = "import streamlit as st\nst.write('x')"
    results.append(
        repeat(
            "AppTest start-up alone (one-line app)",
            lambda: run_app(AppTest.from_string(trivial)),
            runs,
            None,
        )
    )
    for case in PAGES:
        app = new_app(ds, case)
        run_app(app)
        rerun = functools.partial(run_app, app)
        results.append(repeat(f"{case.name}: whole-page rerun", rerun, runs, None))
    return results


def first_render(ds: Dataset, case: PageCase) -> Callable[[], float]:
    return lambda: run_app(new_app(ds, case))


def live_rows(store: MonitorStore, ds: Dataset, runs: int) -> list[Result]:
    """Each live refresh, with the share of store calls and of Streamlit's serialisation."""
    results: list[Result] = []
    for name, call, target in LIVE.values():
        results += measure_live(store, ds, runs, name, call, target)
    return results


def measure_live(
    store: MonitorStore, ds: Dataset, runs: int, name: str, call: LiveCall, target: float | None
) -> list[Result]:
    done: list[Parts] = []

    def once() -> float:
        parts = Parts()
        started = time.perf_counter()
        call(cast(MonitorStore, TimedStore(store, parts)), ds, parts)
        done.append(parts)
        return time.perf_counter() - started

    label = "live refresh" if target is not None else "built"
    total = repeat(f"{name}: {label}", once, runs, target)
    kb = statistics.median(p.sent_bytes for p in done) / 1024
    total = Result(total.measurement, total.times_ms, total.first_ms, target, f"{kb:,.0f} KB sent")
    store_ms = [p.store_s * 1000 for p in done]
    send_ms = [p.send_s * 1000 for p in done]
    return [
        total,
        Result("  of which store calls", store_ms[WARMUP:], store_ms[0], None),
        Result("  of which serialisation", send_ms[WARMUP:], send_ms[0], None),
    ]


def profile(store: MonitorStore, ds: Dataset, key: str, runs: int) -> None:
    """cProfile of `runs` live refreshes of one page: the top calls by cumulative time."""
    _, call, _ = LIVE[key]
    call(store, ds, Parts())
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        call(store, ds, Parts())
    profiler.disable()
    print(f"\nprofile of {runs} live refreshes of {key} (cumulative):")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(40)


def print_table(results: list[Result]) -> None:
    header = ["measurement", "n", "first", "median", "p95", "target", "met", "note"]
    rows = [header, *[r.cells() for r in results]]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    for k, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("-+-".join("-" * w for w in widths))


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def measure(path: Path, ds: Dataset, args: argparse.Namespace) -> list[Result]:
    """Open the store as the monitor does, install it for the pages, time everything."""
    with MonitorStore.open(path, memory_limit=args.memory_limit) as store:
        runtime.install(
            runtime.Monitor(
                store=store,
                actions=None,
                logins=Logins(users={}),
                poll_interval_s=POLL_INTERVAL_S,
                target_description="dashboard benchmark",
                concurrency_limit=CONCURRENCY_LIMIT,
                clock=lambda: ds.now,
            )
        )
        try:
            results = [] if args.live_only else render_rows(ds, args.runs)
            results += live_rows(store, ds, args.runs)
            if args.profile:
                profile(store, ds, args.profile, args.runs)
        finally:
            runtime.install(None)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sandboxes", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row (after 1)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep and reuse data here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--memory-limit", default="512MB", help="DuckDB's memory_limit")
    parser.add_argument("--live-only", action="store_true", help="skip the AppTest rows")
    parser.add_argument("--profile", choices=sorted(LIVE), help="cProfile one live refresh")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def report(results: list[Result], busy_pct: float, data_line: str) -> list[str]:
    """Print the table and what to know about the run; return the rows that missed."""
    print_table(results)
    print(f"\n{data_line}")
    print(
        f"machine CPU busy while measuring: {busy_pct:.0f} % of all cores"
        f" (load average {os.getloadavg()[0]:.2f} at the end)"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the benchmark process: {peak_mb:.0f} MB")
    missed = [r.measurement for r in results if not r.met]
    print("every target met" if not missed else f"targets missed: {'; '.join(missed)}")
    return missed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Session state set from this thread (before a run) is outside a script run: Streamlit
    # warns each time.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    workdir = args.data_dir or Path(tempfile.mkdtemp(prefix="sandscope-dashboard-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        ds = dashboard_data.ensure(workdir, args.sandboxes, args.days, args.memory_limit, say)
        disk_gb = sum(p.stat().st_size for p in workdir.glob(ds.path.name + "*")) / 1e9
        data_line = f"data: {ds.sandboxes:,} sandboxes x {ds.days:g} d, {disk_gb:.2f} GB on disk"
        say(f"measuring at now = {ds.now:%Y-%m-%d %H:%M} UTC, {args.runs} runs a row")
        busy_before, total_before = cpu_times()
        results = measure(ds.path, ds, args)
        busy_after, total_after = cpu_times()
    finally:
        if args.data_dir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            say(f"removed {workdir}")
        elif args.data_dir is None:
            say(f"kept {workdir}: rerun with --data-dir {workdir}")
    busy_pct = 100 * (busy_after - busy_before) / max(total_after - total_before, 1)
    missed = report(results, busy_pct, data_line)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
