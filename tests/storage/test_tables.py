"""The column declarations agree with the tables the migrations make, and the Arrow batches
built from them load into those tables."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from storage import MonitorStore, batches, rows, tables
from tests.storage.rowmaker import sample, sandbox

# How DuckDB names the type each Arrow type of a declaration is stored as.
_DUCKDB_TYPE = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    tables.UTC_US: "TIMESTAMP WITH TIME ZONE",
    pa.list_(pa.string()): "VARCHAR[]",
}


def _stored_columns(path: Path, table: str) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path))
    try:
        rows = con.execute(
            """SELECT column_name, data_type FROM information_schema.columns
            WHERE table_name = ? ORDER BY ordinal_position""",
            [table],
        ).fetchall()
        return [(str(name), str(kind)) for name, kind in rows]
    finally:
        con.close()


@pytest.mark.parametrize("table", tables.DATA_TABLES, ids=lambda t: t.name)
def test_each_declaration_matches_the_migrated_table(tmp_path: Path, table: tables.Table) -> None:
    path = tmp_path / "monitor.duckdb"
    MonitorStore.open(path).close()

    declared = [(c.name, _DUCKDB_TYPE[c.arrow_type]) for c in table.columns]

    assert declared == _stored_columns(path, table.name)


def test_every_data_table_is_declared(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    MonitorStore.open(path).close()
    con = duckdb.connect(str(path))
    try:
        rows = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        names = {str(r[0]) for r in rows}
    finally:
        con.close()

    bookkeeping = {"schema_version", "maintenance_state", "rollup_dirty"}
    assert names - bookkeeping == {t.name for t in tables.DATA_TABLES}


def test_keys_time_columns_and_rollup_sources_name_real_columns() -> None:
    for table in tables.DATA_TABLES:
        table.only(table.key)
        if table.time_column:
            table.column(table.time_column)
    sources = {c.rolled_up[1] for c in tables.SAMPLES_1M.columns if c.rolled_up}
    assert sources - {"*"} == set(tables.SAMPLE_GAUGE_NAMES)
    assert set(tables.SANDBOX_SIGHTING) | set(tables.SANDBOX_END) <= set(tables.SANDBOXES.names)


def test_an_unknown_column_is_refused() -> None:
    with pytest.raises(KeyError, match="no column 'nope'"):
        tables.SAMPLES.column("nope")
    with pytest.raises(KeyError, match="no max of 'nope'"):
        tables.rollup_max_of("nope")


def test_batches_carry_the_declared_schemas() -> None:
    assert batches.samples([sample()]).schema == tables.SAMPLES.arrow_schema()
    sighting = batches.sandboxes([sandbox()])
    assert sighting.schema == tables.SANDBOXES.arrow_schema(tables.SANDBOX_SIGHTING)
    assert sighting.column("metadata_json").to_pylist() == ['{"owner": "tests"}']


def test_select_lists_quote_and_qualify() -> None:
    assert tables.TEAM_MAXIMA.select_list("m", ["metric", "window"]) == 'm."metric", m."window"'
    assert tables.SNAPSHOTS.insert_values_sql() == (
        'INSERT INTO snapshots ("kind", "saved_at", "json_text") VALUES (?, ?, ?)'
    )


@pytest.mark.parametrize(
    ("row_type", "table", "names"),
    [
        (rows.SampleRow, tables.SAMPLES, None),
        (rows.TeamSampleRow, tables.TEAM_SAMPLES, None),
        (rows.TeamMaxRow, tables.TEAM_MAXIMA, None),
        (rows.EventRow, tables.EVENTS, None),
        (rows.LogLineRow, tables.LOG_LINES, None),
        (rows.IncidentRow, tables.INCIDENTS, None),
        (rows.CollectorRun, tables.COLLECTOR_RUNS, None),
        (rows.SandboxEndRow, tables.SANDBOXES, tables.SANDBOX_END),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_row_s_fields_are_its_table_s_columns(
    row_type: type, table: tables.Table, names: tuple[str, ...] | None
) -> None:
    assert [f.name for f in fields(row_type)] == list(names or table.names)


def test_a_sighting_differs_from_its_columns_only_in_the_metadata_s_form() -> None:
    # The collectors hand over a dict; the table keeps it as JSON text (batches.sandboxes).
    got = [f.name for f in fields(rows.SandboxRow)]

    assert got == [n.replace("metadata_json", "metadata") for n in tables.SANDBOX_SIGHTING]
