"""kill -9 of `sandscope collect` in the middle of its work, then a restart on the same file:
no row a finished write reported is lost, none is doubled, and the samples of the time it
was down are fetched back from the API."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.collectors.helpers import assert_nothing_doubled, query
from tests.sandboxd.running_sandboxd import REPOSITORY, RunningSandboxd

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


class Collecting:
    """A running `sandscope collect`, its printed lines read by a thread."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.lines: list[str] = []
        with open(log_path, "a") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sandscope", "collect"],
                cwd=REPOSITORY,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_runs(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while sum(self.finished_runs().values()) < count:
            assert self.process.poll() is None, f"collect exited: {self.lines}"
            assert time.monotonic() < deadline, f"no runs printed: {self.lines}"
            time.sleep(0.05)

    def finished_runs(self) -> Counter[str]:
        """Runs printed as done (each line comes after its run was recorded), per job."""
        return Counter(m["job"] for line in list(self.lines) if (m := RUN_LINE.match(line)))

    def end(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(30)
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


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
        collecting = Collecting(env, tmp_path / "collect.log")
        collecting.wait_for_runs(7)
        time.sleep(rng.uniform(0.5, 2.0))  # somewhere in the middle of the jobs' writes
        assert collecting.end(signal.SIGKILL) == -signal.SIGKILL
        printed += collecting.finished_runs()

        now_stored = stored_samples(db_path)  # opening it replays the write-ahead log
        assert kept <= now_stored, "samples stored before a crash are gone"
        kept = now_stored
        runs = recorded_runs(db_path)
        assert all(runs[job] >= count for job, count in printed.items()), (runs, printed)
        assert_nothing_doubled(db_path)
        time.sleep(2.5)  # down long enough to miss a few seconds of samples

    last = Collecting(env, tmp_path / "collect.log")
    last.wait_for_runs(14)
    time.sleep(1.0)
    assert last.end(signal.SIGTERM) == 0
    assert "stopped" in last.lines

    assert kept <= stored_samples(db_path)
    assert_nothing_doubled(db_path)
    backfilled = query(
        db_path, "SELECT sum(rows_written) FROM collector_runs WHERE job = 'backfill'"
    )
    assert backfilled[0][0] > 0
    for sandbox_id in ids:
        seconds = [
            row[0]
            for row in query(
                db_path,
                "SELECT DISTINCT epoch(ts)::BIGINT FROM samples WHERE sandbox_id = ? ORDER BY 1",
                [sandbox_id],
            )
        ]
        # sandboxd samples every second; the restarts' gaps were fetched back.
        missing = sorted(set(range(seconds[0], seconds[-1] + 1)) - set(seconds))
        assert not missing, f"{sandbox_id}: no samples for seconds {missing}"
