"""kill -9 of `sandscope collect` in the middle of its work, then a restart on the same file:
no row a finished write reported is lost, none is doubled, and the samples of the time it
was down are fetched back from the API."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sandboxd.testing import SOURCE_ROOT, RunningSandboxd
from tests.collectors.helpers import assert_nothing_doubled, query, sampled_seconds
from tests.sandscope.sandscope_process import SandscopeProcess

RUN_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<job>\w+)\s+ok\s+(?P<rows>\d+) rows")
START_TIMEOUT_S = 20.0


def collect_env(sandboxd: RunningSandboxd, db_path: Path) -> dict[str, str]:
    """`sandscope collect` on sandboxd and `db_path`, every job every 0.5 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_"))}
    env.update(
        E2B_API_URL=sandboxd.api_url,
        E2B_API_KEY=sandboxd.api_key,
        E2B_TEAM_ID=sandboxd.team_id,
        SANDSCOPE_DB=str(db_path),
        SANDSCOPE_POLL_INTERVAL_S="0.5",
        SANDSCOPE_EVENTS_INTERVAL_S="0.5",
        SANDSCOPE_SLOW_INTERVAL_S="1",
        SANDSCOPE_MAINTENANCE_INTERVAL_S="1",
        SANDSCOPE_MAX_ATTEMPTS="1",
    )
    return env


def finished_runs(collecting: SandscopeProcess) -> Counter[str]:
    """Runs printed as done (each line comes after its run was recorded), per job."""
    return Counter(m["job"] for line in list(collecting.out) if (m := RUN_LINE.match(line)))


def wait_for_runs(collecting: SandscopeProcess, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while sum(finished_runs(collecting).values()) < count:
        assert collecting.process.poll() is None, f"collect exited: {collecting.show()}"
        assert time.monotonic() < deadline, f"no runs printed: {collecting.show()}"
        time.sleep(0.05)


def stored_samples(db_path: Path) -> set[tuple[str, int]]:
    return {
        (sandbox_id, ts)
        for sandbox_id, ts in query(db_path, "SELECT sandbox_id, epoch_us(ts) FROM samples")
    }


def recorded_runs(db_path: Path) -> Counter[str]:
    rows = query(db_path, "SELECT job, count(*) FROM collector_runs WHERE error IS NULL GROUP BY 1")
    return Counter({job: count for job, count in rows})


def test_kill_9_mid_run_then_restart_loses_nothing_and_doubles_nothing(
    sandboxd: RunningSandboxd, new_sandbox: Callable[..., str], tmp_path: Path
) -> None:
    ids = [new_sandbox() for _ in range(3)]
    db_path = tmp_path / "monitor.duckdb"
    env = collect_env(sandboxd, db_path)
    kept: set[tuple[str, int]] = set()
    printed: Counter[str] = Counter()
    rng = random.Random(4)
    for _ in range(3):
        collecting = SandscopeProcess(env, SOURCE_ROOT, "collect")
        wait_for_runs(collecting, 7)
        time.sleep(rng.uniform(0.5, 2.0))  # somewhere in the middle of the jobs' writes
        assert collecting.stop(signal.SIGKILL)[0] == -signal.SIGKILL
        printed += finished_runs(collecting)

        now_stored = stored_samples(db_path)  # opening it replays the write-ahead log
        assert kept <= now_stored, "samples stored before a crash are gone"
        kept = now_stored
        runs = recorded_runs(db_path)
        assert all(runs[job] >= count for job, count in printed.items()), (runs, printed)
        assert_nothing_doubled(db_path)
        time.sleep(2.5)  # down long enough to miss a few seconds of samples

    last = SandscopeProcess(env, SOURCE_ROOT, "collect")
    wait_for_runs(last, 14)
    time.sleep(1.0)
    assert last.stop(signal.SIGTERM)[0] == 0, last.show()
    assert "stopped" in last.out

    assert kept <= stored_samples(db_path)
    assert_nothing_doubled(db_path)
    backfilled = query(
        db_path, "SELECT sum(rows_written) FROM collector_runs WHERE job = 'backfill'"
    )
    assert backfilled[0][0] > 0
    for sandbox_id in ids:
        seconds = sampled_seconds(db_path, sandbox_id)
        # sandboxd samples every second; the restarts' gaps were fetched back.
        missing = sorted(set(range(seconds[0], seconds[-1] + 1)) - set(seconds))
        assert not missing, f"{sandbox_id}: no samples for seconds {missing}"
