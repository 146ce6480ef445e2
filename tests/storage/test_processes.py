"""One process per file, and no committed row lost or doubled by a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from storage import MonitorStore
from storage.rows import SampleRow
from tests.storage.rowmaker import samples_every_5s

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def test_a_second_process_is_refused_with_our_pid(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    code = """
        import sys
        from pathlib import Path
        from storage import MonitorStore, StoreInUseError
        try:
            MonitorStore.open(Path(sys.argv[1]))
        except StoreInUseError as exc:
            print(exc.pid)
            print(exc)
            sys.exit(3)
    """
    with MonitorStore.open(path):
        done = subprocess.run(
            _python(code, str(path)), capture_output=True, text=True, timeout=60, cwd=REPO
        )
    assert done.returncode == 3, done.stderr
    pid_line, message = done.stdout.splitlines()[:2]
    assert int(pid_line) == os.getpid()
    assert str(path) in message
    assert f"process {os.getpid()}" in message
    assert "duckdb" not in done.stderr.lower()


WRITER = """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from storage import MonitorStore
    from storage.rows import SampleRow

    store = MonitorStore.open(Path(sys.argv[1]))
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    total = 0
    for tick in range(100_000):
        # 500 sandboxes a tick; every batch repeats the previous tick too (a re-poll).
        rows = [
            SampleRow(f"sb-{i}", t0 + timedelta(seconds=5 * t), 2, 1.0, 1, 2, 0, 1, 2)
            for t in (tick - 1, tick) if t >= 0
            for i in range(500)
        ]
        total += store.add_samples(rows)
        print(total, flush=True)
"""


def test_kill_9_mid_write_loses_no_reported_row_and_doubles_none(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    writer = subprocess.Popen(
        _python(WRITER, str(path)), stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert writer.stdout is not None
    reported = 0
    try:
        for line in writer.stdout:
            reported = int(line)
            if reported >= 60 * 500:
                break
        assert writer.poll() is None, "the writer stopped before it was killed"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert reported >= 60 * 500

    with MonitorStore.open(path) as store:
        with store._reading() as cur:
            stored, distinct = cur.execute(
                "SELECT count(*), count(DISTINCT (sandbox_id, ts)) FROM samples"
            ).fetchone() or (0, 0)
        assert stored == distinct
        assert stored >= reported
        # Writing carries on, with dedup against what survived.
        last = store.last_sample_at(["sb-0"])["sb-0"]
        again = samples_every_5s("sb-0", 0, 1)  # a sample far in the past: new
        assert store.add_samples(again) == 1
        assert store.add_samples([SampleRow("sb-0", last, 2, 1.0, 1, 2, 0, 1, 2)]) == 0

    duckdb.connect(str(path)).close()  # closed cleanly, lock released
