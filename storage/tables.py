"""Every stored table's columns, declared once: name, Arrow type and, for rollup columns,
what they are rolled up from.

The Arrow schemas of the bulk writes (`storage.batches`), the column lists of the inserts
(`storage.writes`), the rollup (`storage.maintenance`) and the select lists of the reads
(`storage.reads`) are all made from these declarations, so a column is spelled here and in
the migration that creates it (`storage.schema`), nowhere else. `tests/storage/test_tables.py`
checks that both agree, name for name and type for type.

Names are the same from the table to the page: a row dataclass field, a table column and a
read's frame column that mean the same thing have the same name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa

# Every time column: TIMESTAMPTZ in DuckDB, microseconds in UTC in Arrow.
UTC_US = pa.timestamp("us", tz="UTC")
_TEXT = pa.string()


@dataclass(frozen=True)
class Column:
    """One column. `rolled_up` (rollup tables only): the aggregate ("max", "avg") and the
    raw sample column it is taken over, per minute."""

    name: str
    arrow_type: pa.DataType
    rolled_up: tuple[str, str] | None = None

    @property
    def quoted(self) -> str:
        """The name quoted for SQL (`window` is a reserved word)."""
        return f'"{self.name}"'


@dataclass(frozen=True)
class Table:
    """A table's columns in their stored order. Append-only tables also name the key that
    must stay unique and the time column their writes dedup and prune on."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    time_column: str = ""
    # Widens the dedup window when the key alone identifies a row whose time could, in
    # principle, be restated (an event's id); zero when the time is part of the key.
    window_slack: timedelta = timedelta(0)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called `name`; KeyError when the table has none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    def only(self, names: Iterable[str]) -> tuple[Column, ...]:
        """The columns called `names`, in the order given."""
        return tuple(self.column(n) for n in names)

    def arrow_schema(self, names: Iterable[str] | None = None) -> pa.Schema:
        """The Arrow schema of all columns, or of those called `names` (in that order)."""
        columns = self.columns if names is None else self.only(names)
        return pa.schema([(c.name, c.arrow_type) for c in columns])

    def select_list(self, prefix: str = "", names: Iterable[str] | None = None) -> str:
        """ "a"."x", "a"."y", ...: the columns (all, or `names`) for a SELECT or an INSERT,
        each qualified by `prefix` when one is given."""
        columns = self.columns if names is None else self.only(names)
        qualify = f"{prefix}." if prefix else ""
        return ", ".join(qualify + c.quoted for c in columns)

    def insert_values_sql(self) -> str:
        """INSERT INTO t (every column) VALUES (?, ...): one row, parameters in column order."""
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {self.name} ({self.select_list()}) VALUES ({marks})"


def _col(name: str, arrow_type: pa.DataType) -> Column:
    return Column(name, arrow_type)


SANDBOXES = Table(
    "sandboxes",
    (
        _col("sandbox_id", _TEXT),
        _col("template_id", _TEXT),
        _col("alias", _TEXT),
        _col("state", _TEXT),
        _col("cpu_count", pa.int32()),
        _col("memory_mb", pa.int32()),
        _col("disk_size_mb", pa.int32()),
        _col("started_at", UTC_US),
        _col("end_at", UTC_US),
        _col("metadata_json", _TEXT),
        _col("first_seen_at", UTC_US),
        _col("last_seen_at", UTC_US),
        _col("ended", pa.bool_()),
        _col("ended_at", UTC_US),
        _col("end_reason", _TEXT),
    ),
    key=("sandbox_id",),
)
# What one sighting in the list call says (a `SandboxRow`), and what an end says.
SANDBOX_SIGHTING = (
    "sandbox_id",
    "template_id",
    "alias",
    "state",
    "cpu_count",
    "memory_mb",
    "disk_size_mb",
    "started_at",
    "end_at",
    "metadata_json",
    "last_seen_at",
)
SANDBOX_END = ("sandbox_id", "last_seen_at", "ended_at", "end_reason")

# A sandbox's gauges, in the order samples and the series questions give them.
SAMPLE_GAUGES = (
    _col("cpu_count", pa.int32()),
    _col("cpu_used_pct", pa.float64()),
    _col("mem_used_bytes", pa.int64()),
    _col("mem_total_bytes", pa.int64()),
    _col("mem_cache_bytes", pa.int64()),
    _col("disk_used_bytes", pa.int64()),
    _col("disk_total_bytes", pa.int64()),
)
SAMPLES = Table(
    "samples",
    (_col("sandbox_id", _TEXT), _col("ts", UTC_US), *SAMPLE_GAUGES),
    key=("sandbox_id", "ts"),
    time_column="ts",
)
SAMPLE_GAUGE_NAMES = tuple(c.name for c in SAMPLE_GAUGES)


def _rollup(name: str, arrow_type: pa.DataType, aggregate: str, source: str) -> Column:
    return Column(name, arrow_type, (aggregate, source))


# Per sandbox and minute: the max of every gauge (the series questions read these, so a
# spike survives), the mean of the changing ones. `cpu_count` keeps its name: it is a max.
SAMPLES_1M = Table(
    "samples_1m",
    (
        _col("sandbox_id", _TEXT),
        _col("minute", UTC_US),
        _rollup("samples", pa.int32(), "count", "*"),
        _rollup("cpu_count", pa.int32(), "max", "cpu_count"),
        _rollup("cpu_used_pct_max", pa.float64(), "max", "cpu_used_pct"),
        _rollup("cpu_used_pct_mean", pa.float64(), "avg", "cpu_used_pct"),
        _rollup("mem_used_bytes_max", pa.int64(), "max", "mem_used_bytes"),
        _rollup("mem_used_bytes_mean", pa.float64(), "avg", "mem_used_bytes"),
        _rollup("mem_total_bytes_max", pa.int64(), "max", "mem_total_bytes"),
        _rollup("mem_cache_bytes_max", pa.int64(), "max", "mem_cache_bytes"),
        _rollup("mem_cache_bytes_mean", pa.float64(), "avg", "mem_cache_bytes"),
        _rollup("disk_used_bytes_max", pa.int64(), "max", "disk_used_bytes"),
        _rollup("disk_used_bytes_mean", pa.float64(), "avg", "disk_used_bytes"),
        _rollup("disk_total_bytes_max", pa.int64(), "max", "disk_total_bytes"),
    ),
    time_column="minute",
)


def rollup_max_of(gauge: str) -> Column:
    """The `samples_1m` column holding the per-minute max of sample gauge `gauge`."""
    for column in SAMPLES_1M.columns:
        if column.rolled_up == ("max", gauge):
            return column
    raise KeyError(f"samples_1m keeps no max of {gauge!r}")


TEAM_1M = Table(
    "team_1m",
    (
        _col("minute", UTC_US),
        _col("sandboxes", pa.int32()),
        _col("cpu_used_vcpus_max", pa.float64()),
        _col("cpu_used_vcpus_mean", pa.float64()),
        _col("mem_used_bytes_max", pa.int64()),
        _col("mem_used_bytes_mean", pa.float64()),
        _col("mem_total_bytes", pa.int64()),
        _col("disk_used_bytes_max", pa.int64()),
        _col("disk_total_bytes", pa.int64()),
        _col("cpu_total_vcpus", pa.int32()),
    ),
    time_column="minute",
)
TEAM_SAMPLES = Table(
    "team_samples",
    (
        _col("ts", UTC_US),
        _col("concurrent_sandboxes", pa.int32()),
        _col("sandbox_start_rate", pa.float64()),
    ),
    key=("ts",),
    time_column="ts",
)
TEAM_MAXIMA = Table(
    "team_maxima",
    (
        _col("metric", _TEXT),
        _col("window", _TEXT),
        _col("observed_at", UTC_US),
        _col("peak_at", UTC_US),
        _col("value", pa.float64()),
    ),
)
EVENTS = Table(
    "events",
    (
        _col("event_id", _TEXT),
        _col("sandbox_id", _TEXT),
        _col("type", _TEXT),
        _col("ts", UTC_US),
        _col("team_id", _TEXT),
        _col("kill_reason", _TEXT),
        _col("event_data_json", _TEXT),
    ),
    key=("event_id",),
    time_column="ts",
    window_slack=timedelta(days=1),
)
LOG_LINES = Table(
    "log_lines",
    (
        _col("sandbox_id", _TEXT),
        _col("ts", UTC_US),
        _col("level", _TEXT),
        _col("message", _TEXT),
        _col("fields_json", _TEXT),
    ),
    key=("sandbox_id", "ts", "message"),
    time_column="ts",
)
INCIDENTS = Table(
    "incidents",
    (
        _col("sandbox_id", _TEXT),
        _col("kind", _TEXT),
        _col("occurred_at", UTC_US),
        _col("detected_at", UTC_US),
        _col("process", _TEXT),
        _col("pid", pa.int64()),
        _col("mem_used_bytes", pa.int64()),
        _col("mem_total_bytes", pa.int64()),
        _col("evidence", _TEXT),
    ),
    key=("sandbox_id", "kind", "occurred_at"),
    time_column="occurred_at",
)
COLLECTOR_RUNS = Table(
    "collector_runs",
    (
        _col("job", _TEXT),
        _col("started_at", UTC_US),
        _col("ended_at", UTC_US),
        _col("rows_written", pa.int64()),
        _col("error", _TEXT),
        _col("retry_after_s", pa.float64()),
    ),
    time_column="started_at",
)
SNAPSHOTS = Table(
    "snapshots",
    (_col("kind", _TEXT), _col("saved_at", UTC_US), _col("json_text", _TEXT)),
    key=("kind",),
)
ACTIONS = Table(
    "actions",
    (
        _col("acted_at", UTC_US),
        _col("actor", _TEXT),
        _col("action", _TEXT),
        _col("sandbox_ids", pa.list_(_TEXT)),
        _col("outcome", _TEXT),
        _col("detail", _TEXT),
    ),
    time_column="acted_at",
)
TEMPLATES = Table(
    "templates",
    (
        _col("template_id", _TEXT),
        _col("build_id", _TEXT),
        _col("names", pa.list_(_TEXT)),
        _col("aliases", pa.list_(_TEXT)),
        _col("cpu_count", pa.int32()),
        _col("memory_mb", pa.int32()),
        _col("disk_size_mb", pa.int32()),
        _col("public", pa.bool_()),
        _col("build_count", pa.int32()),
        _col("build_status", _TEXT),
        _col("spawn_count", pa.int64()),
        _col("last_spawned_at", UTC_US),
        _col("created_at", UTC_US),
        _col("updated_at", UTC_US),
        _col("envd_version", _TEXT),
        _col("listed_at", UTC_US),
    ),
    key=("template_id",),
)

# The tables the migrations create that hold data (not the store's own bookkeeping:
# schema_version, maintenance_state, rollup_dirty).
DATA_TABLES = (
    SANDBOXES,
    SAMPLES,
    SAMPLES_1M,
    TEAM_1M,
    TEAM_SAMPLES,
    TEAM_MAXIMA,
    EVENTS,
    LOG_LINES,
    INCIDENTS,
    COLLECTOR_RUNS,
    SNAPSHOTS,
    ACTIONS,
    TEMPLATES,
)
