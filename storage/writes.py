"""The SQL of the bulk writes. Each function runs inside the caller's transaction, with the
writer lock held, and returns how many rows it inserted or changed.

Dedup without key indexes: a batch is first reduced to one row per key (`DISTINCT ON`), then
anti-joined against the stored rows whose time lies in the batch's window. The window bound
lets DuckDB skip every row group outside it (min/max on the time column), so the check costs
a few row groups, not the whole table.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from storage import tables
from storage.tables import Table

_batch_names = itertools.count()


class registered:
    """Context manager: the Arrow table visible to SQL under a fresh name."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
        self._con = con
        self._table = table
        self.name = f"_batch_{next(_batch_names)}"

    def __enter__(self) -> str:
        self._con.register(self.name, self._table)
        return self.name

    def __exit__(self, *exc: object) -> None:
        self._con.unregister(self.name)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> int:
    row = con.execute(sql, list(params)).fetchone()
    return int(row[0]) if row is not None else 0


def insert_new(
    con: duckdb.DuckDBPyConnection, table: Table, batch: pa.Table, lo: datetime, hi: datetime
) -> int:
    """Append the batch's rows whose key is not stored yet (nor repeated in the batch), in
    time order. `batch` has every column of the append-only `table`; `lo`/`hi` are its
    earliest and latest time. Returns rows inserted."""
    cols = table.select_list()
    key = table.select_list(names=table.key)
    match = " AND ".join(f"s.{c.quoted} = b.{c.quoted}" for c in table.only(table.key))
    time = table.column(table.time_column).quoted
    with registered(con, batch) as name:
        return _count(
            con,
            f"""INSERT INTO {table.name} ({cols})
            SELECT {cols} FROM (SELECT DISTINCT ON ({key}) {cols} FROM {name}) b
            WHERE NOT EXISTS (
                SELECT 1 FROM {table.name} s
                WHERE s.{time} BETWEEN ? AND ? AND {match})
            ORDER BY b.{time}""",
            [lo - table.window_slack, hi + table.window_slack],
        )


def upsert_sandboxes(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Update known sandboxes seen later than before, insert new ones. A sandbox that had
    left the list and is listed again is live again (its end is cleared). `batch` holds one
    row per sandbox. Returns rows updated plus inserted."""
    # What a sighting says about a sandbox, beyond its id and when it was seen.
    detail_cols = [c for c in tables.SANDBOX_SIGHTING if c not in ("sandbox_id", "last_seen_at")]
    sets = ", ".join(f"{c} = b.{c}" for c in detail_cols)
    details = tables.SANDBOXES.select_list(names=detail_cols)
    with registered(con, batch) as name:
        # Every SET expression sees the row's old values, so the CASEs compare with the old
        # last_seen_at. Only later sightings update: a replayed poll changes nothing.
        updated = _count(
            con,
            f"""UPDATE sandboxes AS s SET {sets},
                last_seen_at = b.last_seen_at,
                ended = false, ended_at = NULL, end_reason = NULL
            FROM {name} AS b
            WHERE s.sandbox_id = b.sandbox_id AND b.last_seen_at > s.last_seen_at""",
        )
        inserted = _count(
            con,
            f"""INSERT INTO sandboxes (sandbox_id, {details}, first_seen_at, last_seen_at, ended)
            SELECT b.sandbox_id, {tables.SANDBOXES.select_list("b", detail_cols)},
                b.last_seen_at, b.last_seen_at, false
            FROM {name} AS b
            WHERE b.sandbox_id NOT IN (SELECT sandbox_id FROM sandboxes)""",
        )
    return updated + inserted


def mark_ended(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Mark sandboxes as gone from the list. A reason, once known, is kept; a reason arriving
    for a sandbox ended without one replaces its end time too (it comes from the event). An
    end older than the sandbox's last sighting is stale and ignored. Unknown ids are skipped.
    Returns the sandboxes changed."""
    with registered(con, batch) as name:
        return _count(
            con,
            f"""UPDATE sandboxes AS s SET
                ended = true,
                last_seen_at = greatest(s.last_seen_at, b.last_seen_at),
                end_reason = coalesce(s.end_reason, b.end_reason),
                ended_at = CASE
                    WHEN s.end_reason IS NULL AND b.end_reason IS NOT NULL
                        THEN coalesce(b.ended_at, s.ended_at)
                    ELSE coalesce(s.ended_at, b.ended_at) END
            FROM {name} AS b
            WHERE s.sandbox_id = b.sandbox_id
              AND b.last_seen_at >= s.last_seen_at
              AND (NOT s.ended
                   OR b.last_seen_at > s.last_seen_at
                   OR (s.end_reason IS NULL AND b.end_reason IS NOT NULL)
                   OR (s.ended_at IS NULL AND b.ended_at IS NOT NULL))""",
        )


def add_team_maxima(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Keep team maxima as a short change log: per (metric, window) only the batch's latest
    observation newer than the stored one counts; if its peak equals the latest stored peak,
    that row's observed_at moves forward instead of adding a row. Returns rows inserted or
    moved forward."""
    with registered(con, batch) as name:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _maxima AS
            WITH latest_in_batch AS (
                SELECT * FROM {name}
                QUALIFY row_number() OVER (
                    PARTITION BY metric, "window" ORDER BY observed_at DESC) = 1),
            stored AS (
                SELECT * FROM team_maxima
                QUALIFY row_number() OVER (
                    PARTITION BY metric, "window" ORDER BY observed_at DESC) = 1)
            SELECT b.*, s.observed_at AS stored_observed_at,
                (s.peak_at IS NOT DISTINCT FROM b.peak_at
                 AND s.value IS NOT DISTINCT FROM b.value) AS same_peak
            FROM latest_in_batch b LEFT JOIN stored s USING (metric, "window")
            WHERE s.observed_at IS NULL OR b.observed_at > s.observed_at"""
        )
    try:
        moved = _count(
            con,
            """UPDATE team_maxima AS t SET observed_at = m.observed_at FROM _maxima m
            WHERE m.same_peak AND t.metric = m.metric AND t."window" = m."window"
              AND t.observed_at = m.stored_observed_at""",
        )
        inserted = _count(
            con,
            f"""INSERT INTO team_maxima ({tables.TEAM_MAXIMA.select_list()})
            SELECT {tables.TEAM_MAXIMA.select_list()} FROM _maxima WHERE NOT same_peak""",
        )
    finally:
        con.execute("DROP TABLE _maxima")
    return moved + inserted


def save_snapshot(con: duckdb.DuckDBPyConnection, kind: str, json_text: str, at: datetime) -> None:
    """Keep the latest JSON document of a kind (an older `at` does not replace a newer one)."""
    con.execute(
        f"""{tables.SNAPSHOTS.insert_values_sql()}
        ON CONFLICT (kind) DO UPDATE
        SET saved_at = excluded.saved_at, json_text = excluded.json_text
        WHERE excluded.saved_at >= snapshots.saved_at""",
        [kind, at, json_text],
    )


def replace_templates(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> int:
    """Make the catalog exactly the templates in `batch` (a template no longer listed is
    gone). Returns the templates stored."""
    con.execute("DELETE FROM templates")
    with registered(con, batch) as name:
        columns = tables.TEMPLATES.select_list()
        con.execute(f"INSERT INTO templates ({columns}) SELECT {columns} FROM {name}")
    return int(batch.num_rows)


def record_run(
    con: duckdb.DuckDBPyConnection,
    job: str,
    started_at: datetime,
    ended_at: datetime,
    rows_written: int,
    error: str | None,
    retry_after_s: float | None,
) -> None:
    con.execute(
        tables.COLLECTOR_RUNS.insert_values_sql(),
        [job, started_at, ended_at, rows_written, error, retry_after_s],
    )


def record_action(
    con: duckdb.DuckDBPyConnection,
    at: datetime,
    actor: str,
    action: str,
    sandbox_ids: Sequence[str],
    outcome: str,
    detail: str,
) -> None:
    con.execute(
        tables.ACTIONS.insert_values_sql(),
        [at, actor, action, list(sandbox_ids), outcome, detail],
    )


def mark_rollup_dirty(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """Remember that minutes in [lo, hi] got samples after they were rolled up."""
    con.execute("INSERT INTO rollup_dirty VALUES (?, ?)", [lo, hi])
