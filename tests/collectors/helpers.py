"""Helpers of the collector tests: short intervals, waiting, reading the file after."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest

from collectors.config import CollectorConfig

T = TypeVar("T")

FAST = CollectorConfig(
    poll_interval_s=0.5,
    team_interval_s=0.5,
    events_interval_s=0.5,
    trouble_interval_s=0.5,
    backfill_interval_s=0.5,
    slow_interval_s=2.0,
    maintenance_interval_s=2.0,
    backfill_gap_s=1.5,
    max_backoff_s=2.0,
    log_sweep_lookback_s=60.0,
    trouble_before_s=30.0,
)


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `check` every 0.1 s until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def query(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the file, opened read-only (no collector may hold it)."""
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def sampled_seconds(path: Path, sandbox_id: str) -> list[int]:
    """The Unix seconds of the sandbox's stored samples, ascending, each once."""
    sql = "SELECT DISTINCT epoch(ts)::BIGINT FROM samples WHERE sandbox_id = ? ORDER BY 1"
    return [row[0] for row in query(path, sql, [sandbox_id])]


def assert_nothing_doubled(path: Path) -> None:
    """Every table the collectors append to holds each key once."""
    checks = {
        "samples": "sandbox_id, ts",
        "team_samples": "ts",
        "events": "event_id",
        "log_lines": "sandbox_id, ts, message",
        "incidents": "sandbox_id, kind, occurred_at",
    }
    for table, key in checks.items():
        ((rows, keys),) = query(path, f"SELECT count(*), count(DISTINCT ({key})) FROM {table}")
        assert rows == keys, f"{table}: {rows} rows for {keys} keys"
