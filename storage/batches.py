"""Row dataclasses to Arrow tables, column by column (no per-row SQL), ready for DuckDB.

Columns and types come from `storage.tables`; a row field has the name of its column, so
only the few fields stored in another form (metadata as JSON) need a getter here.

Every timestamp column is `timestamp[us, tz=UTC]`; aware datetimes in any zone are converted
to UTC by Arrow. Naive datetimes are refused: a row without a zone is a collector bug.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage import tables
from storage.rows import (
    EventRow,
    IncidentRow,
    LogLineRow,
    SampleRow,
    SandboxEndRow,
    SandboxRow,
    TeamMaxRow,
    TeamSampleRow,
    TemplateRow,
)

Getters = dict[str, Callable[[Any], Any]]


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` if it carries a time zone; raise ValueError for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {value!r}")
    return value


def _table(rows: Sequence[Any], schema: pa.Schema, getters: Getters) -> pa.Table:
    arrays = []
    for field in schema:
        get = getters.get(field.name)
        values = [get(r) for r in rows] if get else [getattr(r, field.name) for r in rows]
        if field.type == tables.UTC_US:
            first = next((v for v in values if v is not None), None)
            if first is not None:
                require_aware(first, field.name)
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def samples(rows: Sequence[SampleRow]) -> pa.Table:
    return _table(rows, tables.SAMPLES.arrow_schema(), {})


def team_samples(rows: Sequence[TeamSampleRow]) -> pa.Table:
    return _table(rows, tables.TEAM_SAMPLES.arrow_schema(), {})


def team_maxima(rows: Sequence[TeamMaxRow]) -> pa.Table:
    return _table(rows, tables.TEAM_MAXIMA.arrow_schema(), {})


def events(rows: Sequence[EventRow]) -> pa.Table:
    return _table(rows, tables.EVENTS.arrow_schema(), {})


def log_lines(rows: Sequence[LogLineRow]) -> pa.Table:
    return _table(rows, tables.LOG_LINES.arrow_schema(), {})


def incidents(rows: Sequence[IncidentRow]) -> pa.Table:
    return _table(rows, tables.INCIDENTS.arrow_schema(), {})


def templates(rows: Sequence[TemplateRow]) -> pa.Table:
    """One row per template: of a template listed twice, the last one wins."""
    by_id = {row.template_id: row for row in rows}
    return _table(list(by_id.values()), tables.TEMPLATES.arrow_schema(), {})


def sandboxes(rows: Sequence[SandboxRow]) -> pa.Table:
    """One row per sandbox: of several sightings in the batch, the latest wins."""
    latest: dict[str, SandboxRow] = {}
    for row in rows:
        kept = latest.get(row.sandbox_id)
        if kept is None or row.last_seen_at >= kept.last_seen_at:
            latest[row.sandbox_id] = row
    getters: Getters = {
        "metadata_json": lambda r: json.dumps(r.metadata, sort_keys=True),
    }
    schema = tables.SANDBOXES.arrow_schema(tables.SANDBOX_SIGHTING)
    return _table(list(latest.values()), schema, getters)


def sandbox_ends(rows: Sequence[SandboxEndRow]) -> pa.Table:
    """One row per sandbox: a row with a reason beats one without, then the latest sighting."""
    best: dict[str, SandboxEndRow] = {}
    for row in rows:
        kept = best.get(row.sandbox_id)
        rank = (row.end_reason is not None, row.last_seen_at)
        if kept is None or rank >= (kept.end_reason is not None, kept.last_seen_at):
            best[row.sandbox_id] = row
    return _table(list(best.values()), tables.SANDBOXES.arrow_schema(tables.SANDBOX_END), {})


def time_range(table: pa.Table, column: str) -> tuple[datetime, datetime]:
    """Earliest and latest value of a UTC timestamp column (aware datetimes)."""
    bounds = pc.min_max(table[column])
    lo: datetime = bounds["min"].as_py()
    hi: datetime = bounds["max"].as_py()
    return lo, hi
