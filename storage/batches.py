"""Row dataclasses to Arrow tables, column by column (no per-row SQL), ready for DuckDB.

Every timestamp column is `timestamp[us, tz=UTC]`; aware datetimes in any zone are converted
to UTC by Arrow. Naive datetimes are refused: a row without a zone is a collector bug.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

from storage.rows import (
    EventRow,
    IncidentRow,
    LogLineRow,
    SampleRow,
    SandboxEndRow,
    SandboxRow,
    TeamMaxRow,
    TeamSampleRow,
)

UTC_US = pa.timestamp("us", tz="UTC")

Columns = tuple[tuple[str, pa.DataType], ...]

SAMPLE_COLUMNS: Columns = (
    ("sandbox_id", pa.string()),
    ("ts", UTC_US),
    ("cpu_count", pa.int32()),
    ("cpu_used_pct", pa.float64()),
    ("mem_used_bytes", pa.int64()),
    ("mem_total_bytes", pa.int64()),
    ("mem_cache_bytes", pa.int64()),
    ("disk_used_bytes", pa.int64()),
    ("disk_total_bytes", pa.int64()),
)
TEAM_SAMPLE_COLUMNS: Columns = (
    ("ts", UTC_US),
    ("concurrent_sandboxes", pa.int32()),
    ("sandbox_start_rate", pa.float64()),
)
TEAM_MAX_COLUMNS: Columns = (
    ("metric", pa.string()),
    ("window", pa.string()),
    ("observed_at", UTC_US),
    ("peak_at", UTC_US),
    ("value", pa.float64()),
)
EVENT_COLUMNS: Columns = (
    ("event_id", pa.string()),
    ("sandbox_id", pa.string()),
    ("type", pa.string()),
    ("ts", UTC_US),
    ("team_id", pa.string()),
    ("kill_reason", pa.string()),
    ("event_data_json", pa.string()),
)
LOG_LINE_COLUMNS: Columns = (
    ("sandbox_id", pa.string()),
    ("ts", UTC_US),
    ("level", pa.string()),
    ("message", pa.string()),
    ("fields_json", pa.string()),
)
INCIDENT_COLUMNS: Columns = (
    ("sandbox_id", pa.string()),
    ("kind", pa.string()),
    ("occurred_at", UTC_US),
    ("detected_at", UTC_US),
    ("process", pa.string()),
    ("pid", pa.int64()),
    ("mem_used_bytes", pa.int64()),
    ("mem_total_bytes", pa.int64()),
    ("evidence", pa.string()),
)
SANDBOX_COLUMNS: Columns = (
    ("sandbox_id", pa.string()),
    ("template_id", pa.string()),
    ("alias", pa.string()),
    ("state", pa.string()),
    ("cpu_count", pa.int32()),
    ("memory_mb", pa.int32()),
    ("disk_size_mb", pa.int32()),
    ("started_at", UTC_US),
    ("end_at", UTC_US),
    ("metadata_json", pa.string()),
    ("seen_at", UTC_US),
)
SANDBOX_END_COLUMNS: Columns = (
    ("sandbox_id", pa.string()),
    ("last_seen_at", UTC_US),
    ("ended_at", UTC_US),
    ("end_reason", pa.string()),
)


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` if it carries a time zone; raise ValueError for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value!r}")
    return value


def _table(
    rows: Sequence[Any], columns: Columns, getters: dict[str, Callable[[Any], Any]]
) -> pa.Table:
    arrays = []
    for name, arrow_type in columns:
        get = getters.get(name)
        values = [get(r) for r in rows] if get else [getattr(r, name) for r in rows]
        if arrow_type == UTC_US:
            first = next((v for v in values if v is not None), None)
            if first is not None:
                require_aware(first, name)
        arrays.append(pa.array(values, type=arrow_type))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def samples(rows: Sequence[SampleRow]) -> pa.Table:
    return _table(rows, SAMPLE_COLUMNS, {})


def team_samples(rows: Sequence[TeamSampleRow]) -> pa.Table:
    return _table(rows, TEAM_SAMPLE_COLUMNS, {})


def team_maxima(rows: Sequence[TeamMaxRow]) -> pa.Table:
    return _table(rows, TEAM_MAX_COLUMNS, {})


def events(rows: Sequence[EventRow]) -> pa.Table:
    return _table(rows, EVENT_COLUMNS, {})


def log_lines(rows: Sequence[LogLineRow]) -> pa.Table:
    return _table(rows, LOG_LINE_COLUMNS, {})


def incidents(rows: Sequence[IncidentRow]) -> pa.Table:
    return _table(rows, INCIDENT_COLUMNS, {"occurred_at": lambda r: r.at})


def sandboxes(rows: Sequence[SandboxRow]) -> pa.Table:
    """One row per sandbox: of several sightings in the batch, the latest (`seen_at`) wins."""
    latest: dict[str, SandboxRow] = {}
    for row in rows:
        kept = latest.get(row.sandbox_id)
        if kept is None or row.seen_at >= kept.seen_at:
            latest[row.sandbox_id] = row
    getters: dict[str, Callable[[Any], Any]] = {
        "metadata_json": lambda r: json.dumps(r.metadata, sort_keys=True)
    }
    return _table(list(latest.values()), SANDBOX_COLUMNS, getters)


def sandbox_ends(rows: Sequence[SandboxEndRow]) -> pa.Table:
    """One row per sandbox: a row with a reason beats one without, then the latest sighting."""
    best: dict[str, SandboxEndRow] = {}
    for row in rows:
        kept = best.get(row.sandbox_id)
        rank = (row.end_reason is not None, row.last_seen_at)
        if kept is None or rank >= (kept.end_reason is not None, kept.last_seen_at):
            best[row.sandbox_id] = row
    return _table(list(best.values()), SANDBOX_END_COLUMNS, {})


def time_range(table: pa.Table, column: str) -> tuple[datetime, datetime]:
    """Earliest and latest value of a UTC timestamp column (aware datetimes)."""
    bounds = pc.min_max(table[column])
    lo: datetime = bounds["min"].as_py()
    hi: datetime = bounds["max"].as_py()
    return lo, hi
