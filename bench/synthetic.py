"""Synthetic sandboxes and samples for the benchmarks: fast enough to build 100 M rows.

Sandbox i is sampled every `interval_s` seconds at an offset of i mod `interval_s`, with
gauges that wander deterministically (a hash of sandbox and time) and, about once a day per
sandbox, a one-sample memory spike to 99 % of its limit. Rows go in chunk by chunk, each
sorted by time, like a collector's would.

The samples are made by DuckDB itself (`range()` x `range()`), written with a connection of
this module's own to a store file that `MonitorStore.open` has created and closed again: a
collector's way in (`add_samples`, rows as Python objects, each batch deduplicated) would take
far longer than the reads being measured. Only the table's name and its declared columns
(`storage.tables.SAMPLES`) are relied on, and a column this module cannot fill is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from storage.rows import SandboxRow
from storage.tables import SAMPLES

GIB = 1024**3
# DuckDB's settings for the fill: the store's defaults (storage.MonitorStore.open).
DEFAULT_MEMORY_LIMIT = "512MB"
DEFAULT_THREADS = 2


def sandbox_id(i: int) -> str:
    """The id of synthetic sandbox `i`."""
    return f"sbx-{i:05d}"


def sandbox_rows(count: int, started_at: datetime, seen_at: datetime) -> list[SandboxRow]:
    """`count` synthetic sandboxes (2 vCPUs, 1 GiB of memory, 4 GiB of disk), last seen at
    `seen_at`."""
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


def sample_columns_sql(start_s: int) -> dict[str, str]:
    """Each samples column as SQL over `s` (the sandbox's index), `ts_s` (the sample's Unix
    second) and `h` (a hash of both); `start_s` is the first second of the fill."""
    return {
        "sandbox_id": "'sbx-' || lpad(s::VARCHAR, 5, '0')",
        "ts": "to_timestamp(ts_s)",
        "cpu_count": "2",
        "cpu_used_pct": "(h % 10000) / 100.0",
        "mem_used_bytes": f"""CASE WHEN h % 17280 = 0 THEN {GIB * 99 // 100}
            ELSE {GIB // 4} + (s % 500) * 1000000 + (h % 100000) * 1000 END""",
        "mem_total_bytes": f"{GIB}",
        "mem_cache_bytes": f"{GIB // 16}",
        "disk_used_bytes": f"{GIB} + s * 1000000 + (ts_s - {start_s}) * 100",
        "disk_total_bytes": f"{4 * GIB}",
    }


def fill_samples(
    path: Path,
    sandboxes: int,
    start: datetime,
    end: datetime,
    interval_s: int = 5,
    chunk: timedelta = timedelta(hours=2),
    progress: Callable[[datetime, int], None] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> int:
    """Insert samples of `sandboxes` sandboxes over [start, end) (UTC-aware) into the store
    file at `path`, which no store may hold open; one transaction per `chunk` of time.
    Calls `progress(chunk_end, rows_so_far)` after each. Returns the rows inserted.
    No dedup: meant for an empty table."""
    if start.tzinfo is None:
        raise ValueError(f"start must carry a time zone, got {start.isoformat()}")
    expressions = sample_columns_sql(int(start.timestamp()))
    unknown = [name for name in SAMPLES.names if name not in expressions]
    if unknown:
        raise ValueError(f"bench/synthetic.py cannot fill the samples columns {unknown}")
    select = ", ".join(expressions[name] for name in SAMPLES.names)
    total = 0
    with duckdb.connect(
        str(path), config={"memory_limit": memory_limit, "threads": DEFAULT_THREADS}
    ) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        lo = start
        while lo < end:
            hi = min(lo + chunk, end)
            lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
            con.execute("BEGIN")
            row = con.execute(
                f"""INSERT INTO {SAMPLES.name} ({SAMPLES.select_list()})
                WITH g AS (
                    SELECT s, t + s % {interval_s} AS ts_s, hash(s * 1000003 + t) AS h
                    FROM range({lo_s}, {hi_s}, {interval_s}) r(t), range({sandboxes}) q(s)
                    WHERE t + s % {interval_s} < {hi_s})
                SELECT {select}
                FROM g ORDER BY ts_s, s"""
            ).fetchone()
            con.execute("COMMIT")
            total += int(row[0]) if row else 0
            if progress is not None:
                progress(hi, total)
            lo = hi
    return total
