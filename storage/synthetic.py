"""Synthetic samples made inside DuckDB, for benchmarks: fast enough to build 100 M rows.

Sandbox i is sampled every `interval_s` seconds at an offset of i mod `interval_s`, with
gauges that wander deterministically (a hash of sandbox and time) and, about once a day per
sandbox, a one-sample memory spike to 99 % of its limit. Rows go in chunk by chunk, each
sorted by time, like a collector's would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from storage.batches import require_aware
from storage.rows import SandboxRow
from storage.store import MonitorStore

GIB = 1024**3


def sandbox_id(i: int) -> str:
    """The id of synthetic sandbox `i`."""
    return f"sbx-{i:05d}"


def sandbox_rows(count: int, started_at: datetime, seen_at: datetime) -> list[SandboxRow]:
    """`count` synthetic sandboxes (2 vCPUs, 1 GiB of memory, 4 GiB of disk)."""
    return [
        SandboxRow(
            sandbox_id=sandbox_id(i),
            template_id=f"tpl-{i % 7}",
            alias=None,
            state="running",
            cpu_count=2,
            memory_mb=1024,
            disk_size_mb=4096,
            started_at=started_at,
            end_at=seen_at + timedelta(hours=1),
            metadata={"bench": "1"},
            last_seen_at=seen_at,
        )
        for i in range(count)
    ]


def fill_samples(
    store: MonitorStore,
    sandboxes: int,
    start: datetime,
    end: datetime,
    interval_s: int = 5,
    chunk: timedelta = timedelta(hours=2),
    progress: Callable[[datetime, int], None] | None = None,
) -> int:
    """Insert samples of `sandboxes` sandboxes over [start, end) (UTC-aware), one
    transaction per `chunk` of time. Calls `progress(chunk_end, rows_so_far)` after each.
    Returns the rows inserted. No dedup: meant for an empty table."""
    require_aware(start, "start")
    total = 0
    lo = start
    while lo < end:
        hi = min(lo + chunk, end)
        lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
        with store._writing("filling synthetic samples") as con:
            row = con.execute(
                f"""INSERT INTO samples
                WITH g AS (
                    SELECT s, t + s % {interval_s} AS ts_s,
                        hash(s * 1000003 + t) AS h
                    FROM range({lo_s}, {hi_s}, {interval_s}) r(t), range({sandboxes}) q(s)
                    WHERE t + s % {interval_s} < {hi_s})
                SELECT 'sbx-' || lpad(s::VARCHAR, 5, '0'),
                    make_timestamp(ts_s * 1000000)::TIMESTAMPTZ,
                    2,
                    (h % 10000) / 100.0,
                    CASE WHEN h % 17280 = 0 THEN {GIB * 99 // 100}
                        ELSE {GIB // 4} + (s % 500) * 1000000 + (h % 100000) * 1000 END,
                    {GIB},
                    {GIB // 16},
                    {GIB} + s * 1000000 + (ts_s - {int(start.timestamp())}) * 100,
                    {4 * GIB}
                FROM g ORDER BY ts_s, s"""
            ).fetchone()
        total += int(row[0]) if row else 0
        if progress is not None:
            progress(hi, total)
        lo = hi
    return total
