"""Kill-to-incident time of a live OOM while a day of history waits (issue 9, finding 10).

    .venv/bin/python bench/trouble_bench.py                  # about 3 minutes
    .venv/bin/python bench/trouble_bench.py --past-ends 100000 --runs 3 --kills 5 --timeout-s 60

A fake E2B API (`bench/fake_e2b.py`, its own process on 127.0.0.1) holds one running
sandbox and `--past-ends` sandboxes that ended earlier, each with a killed event (the
events call pages them 100 at a time). This process is the monitor: the real `Collector`
with its production intervals (every job every 5 s, events every 10 s) and a DuckDB file
in a temporary directory. Each run:

1. starts the collector on an empty file; 10-15 s later, while the events job's first run
   is still reading back 24 h of events, one OOM kill (as in step 2);
2. waits for that events run, which leaves every past end as a sign of trouble to look at;
   then, `--kills` times, at a random point of the 5 s cycle: the fake API appends
   sandboxd's structured record of a kernel OOM kill to the live sandbox's log, stamped
   with the current millisecond (the kill), and this process polls the store every 20 ms
   until the confirmed incident at that stamp is there (or `--timeout-s` passes);
3. stops the collector and reads how long its trouble runs took.

Kill-to-incident is the time from the stamp to the first poll of the store that finds the
incident: what an operator waits for between the kernel's kill and the dashboard's row.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.collector_bench import fake_api, make_collector, progress  # noqa: E402
from bench.fake_e2b import sandbox_id  # noqa: E402
from collectors.config import CollectorConfig  # noqa: E402
from collectors.scheduler import Collector  # noqa: E402

LIVE_ID = sandbox_id(0)
STORE_POLL_S = 0.02


@dataclass
class Kill:
    """One OOM kill: seconds until its incident was stored (None: not within the timeout),
    and the signs of trouble waiting when it happened."""

    to_incident_s: float | None
    waiting_signs: int
    line_kept: bool
    during_load: bool


@dataclass
class Run:
    """One monitor start: how long the events job took to read the history, and its kills."""

    history_loaded_s: float
    kills: list[Kill]
    trouble_run_ms: list[float]


def events_job_outcome(collector: Collector) -> tuple[bool, str | None]:
    """(whether the events job has finished a run, that latest run's error or None), from
    the store's freshness table, as the dashboard reads it."""
    fresh = collector.context.store.data_freshness(datetime.now(UTC))
    rows = fresh[fresh["job"] == "events"]
    if rows.empty:
        return False, None
    error = rows["last_error"].iloc[0]
    return True, None if error is None else str(error)


def wait_for_history(collector: Collector, timeout_s: float) -> float:
    """Seconds from now until the events job's first run is recorded; fails past the
    timeout or when that run failed."""
    started = time.monotonic()
    while not (outcome := events_job_outcome(collector))[0]:
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"the events job did not finish within {timeout_s} s")
        time.sleep(0.1)
    if outcome[1] is not None:
        raise RuntimeError(f"the events job failed: {outcome[1]}")
    return time.monotonic() - started


def one_kill(url: str, collector: Collector, timeout_s: float, during_load: bool) -> Kill:
    """Write an OOM record into the live sandbox's log; wait for its incident."""
    store = collector.context.store
    waiting = len(collector.context.watch)
    answer = httpx.post(f"{url}/bench/oom", timeout=10)
    answer.raise_for_status()
    at = datetime.fromtimestamp(answer.json()["at_unix_ms"] / 1000, UTC)
    while (elapsed_s := time.time() - at.timestamp()) < timeout_s:
        found = store.incidents_since(at - timedelta(milliseconds=1))
        mine = found[(found["sandbox_id"] == LIVE_ID) & (found["kind"] == "oom_confirmed")]
        if any(abs((stamp - at).total_seconds()) < 0.001 for stamp in mine["occurred_at"]):
            kept = store.logs_around(LIVE_ID, at, before=1, after=0)
            line_kept = any(abs((ts - at).total_seconds()) < 0.001 for ts in kept["ts"])
            return Kill(elapsed_s, waiting, line_kept, during_load)
        time.sleep(STORE_POLL_S)
    return Kill(None, waiting, False, during_load)


def one_run(url: str, workdir: Path, arguments: argparse.Namespace, rng: random.Random) -> Run:
    config = CollectorConfig()
    db_path = workdir / f"monitor-{time.monotonic_ns()}.duckdb"
    collector = make_collector(url, db_path, config)
    started = time.monotonic()
    collector.start()
    try:
        # A kill while the events job is still reading the history in.
        time.sleep(rng.uniform(2 * config.trouble_interval_s, 3 * config.trouble_interval_s))
        loading = not events_job_outcome(collector)[0]
        during_load = report(one_kill(url, collector, arguments.timeout_s, loading))
        loaded_s = wait_for_history(collector, arguments.load_timeout_s) + (
            time.monotonic() - started
        )
        progress(f"  history read in {loaded_s:.1f} s; {len(collector.context.watch)} signs wait")
        kills = [during_load]
        for _ in range(arguments.kills):
            time.sleep(rng.uniform(0, config.trouble_interval_s))
            kills.append(report(one_kill(url, collector, arguments.timeout_s, False)))
    finally:
        collector.stop()
    return Run(loaded_s, kills, trouble_run_ms(db_path))


def report(kill: Kill) -> Kill:
    shown = "not recorded" if kill.to_incident_s is None else f"{kill.to_incident_s:.2f} s"
    when = "while the history loads" if kill.during_load else f"{kill.waiting_signs} signs wait"
    progress(f"  kill -> incident: {shown} ({when})")
    return kill


def trouble_run_ms(db_path: Path) -> list[float]:
    """How long each trouble run took (ms), from the file of a stopped collector."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = con.execute(
            "SELECT epoch_ms(ended_at) - epoch_ms(started_at) FROM collector_runs "
            "WHERE job = 'trouble' ORDER BY started_at"
        ).fetchall()
    return [float(ms) for (ms,) in rows]


def summary(runs: list[Run], timeout_s: float, poll_s: float) -> str:
    kills = [kill for run in runs for kill in run.kills]
    recorded = [kill.to_incident_s for kill in kills if kill.to_incident_s is not None]
    missed = len(kills) - len(recorded)
    lines = [
        f"runs: {len(runs)}, kills: {len(kills)}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.release()}",
    ]
    if recorded:
        target = 2 * poll_s
        met = "yes" if missed == 0 and max(recorded) < target else "NO"
        lines.append(
            f"kill -> incident: median {statistics.median(recorded):.2f} s, "
            f"max {max(recorded):.2f} s, min {min(recorded):.2f} s over {len(recorded)} kills; "
            f"target: every kill < {target:g} s (two polls): {met}"
        )
    if missed:
        lines.append(f"not recorded within {timeout_s:g} s: {missed} of {len(kills)} kills")
    lines.append(
        "OOM line kept with its incident: "
        f"{sum(kill.line_kept for kill in kills)} of {len(kills)} kills"
    )
    waiting = [kill.waiting_signs for kill in kills if not kill.during_load]
    loading = [kill.to_incident_s for kill in kills if kill.during_load]
    lines.append(f"signs waiting at the kills after the load: {min(waiting)} to {max(waiting)}")
    lines.append(
        "kills while the events job read the history in: "
        + ", ".join("not recorded" if s is None else f"{s:.2f} s" for s in loading)
    )
    trouble_ms = [ms for run in runs for ms in run.trouble_run_ms]
    lines.append(
        f"trouble runs: {len(trouble_ms)}, median {statistics.median(trouble_ms):.0f} ms, "
        f"max {max(trouble_ms):.0f} ms"
    )
    lines.append(
        "events job's first run (24 h of history): "
        + ", ".join(f"{run.history_loaded_s:.1f} s" for run in runs)
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Kill-to-incident time of a live OOM.")
    parser.add_argument("--past-ends", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=5, help="OOM kills per run")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="per kill")
    parser.add_argument("--load-timeout-s", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=9)
    arguments = parser.parse_args()
    # The events job's first run outlasts its interval: APScheduler says so every 10 s.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    rng = random.Random(arguments.seed)
    runs: list[Run] = []
    history = ("--past-ends", str(arguments.past_ends))
    with tempfile.TemporaryDirectory() as tmp, fake_api(1, *history) as url:
        progress(f"fake API with 1 live sandbox and {arguments.past_ends} past ends at {url}")
        for index in range(arguments.runs):
            progress(f"run {index + 1} of {arguments.runs}")
            runs.append(one_run(url, Path(tmp), arguments, rng))
    print(f"past ends: {arguments.past_ends}")
    print(summary(runs, arguments.timeout_s, CollectorConfig().poll_interval_s))


if __name__ == "__main__":
    main()
