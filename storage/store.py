"""`MonitorStore`: the one DuckDB file of a monitor process, its bulk writes, its reads
(`storage.reads`, one module per kind of question) and the background maintenance.

Threads: writes (and maintenance steps) take one writer lock and run on the store's own
connection, one transaction each; reads take no lock and run on a fresh cursor per call, so
they see the last committed state and never wait for a writer (DuckDB's MVCC).
All datetimes going in must be timezone-aware; all coming out are UTC.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from storage import batches, tables, writes
from storage.base import claim_path, release_path
from storage.errors import StoreError, StoreInUseError, is_lock_error
from storage.maintenance import Maintenance
from storage.reads.events import EventReads
from storage.reads.fleet import FleetReads
from storage.reads.freshness import FreshnessReads
from storage.reads.incidents import IncidentReads
from storage.reads.series import SeriesReads
from storage.reads.template_fit import TemplateFitReads
from storage.reads.templates import TemplateCatalogReads
from storage.rows import (
    CollectorRun,
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
from storage.schema import migrate


def _connect(path: Path, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), config={"memory_limit": memory_limit, "threads": threads})
    except duckdb.Error as exc:
        if is_lock_error(str(exc)):
            raise StoreInUseError.from_lock_message(path, str(exc)) from exc
        raise StoreError(f"cannot open {path}: {exc}") from exc


class MonitorStore(
    FleetReads,
    SeriesReads,
    IncidentReads,
    EventReads,
    FreshnessReads,
    TemplateFitReads,
    TemplateCatalogReads,
    Maintenance,
):
    """The monitor's DuckDB store. Build it with `MonitorStore.open(path)`. Its reads are
    grouped by what they answer in `storage.reads`; its writes are here."""

    # ---- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, memory_limit: str = "512MB", threads: int = 2) -> MonitorStore:
        """Open (or create, with its parent directories) the store at `path` and apply any
        pending migrations. `memory_limit` bounds DuckDB's memory, its cache of the file
        included (DuckDB syntax, e.g. "1GB"; bigger work spills to a temp directory next to
        the file); the default leaves room under the monitor's 1 GB. `threads`: DuckDB's
        worker threads.

        Raises `StoreInUseError` when another process holds the file, `StoreTooNewError`
        when a newer sandscope wrote it, `StoreError` for anything else DuckDB refuses.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {path}: {exc}") from exc
        if not claim_path(path):
            raise StoreInUseError(path, os.getpid(), "this process: a store already open")
        try:
            con = _connect(path, memory_limit, threads)
            # GLOBAL so every cursor inherits it: timestamps come back in UTC.
            con.execute("SET GLOBAL TimeZone = 'UTC'")
        except BaseException:
            release_path(path)
            raise
        try:
            # Per connection only (cursors repeat it): long statements would draw a progress
            # bar on stdout.
            con.execute("SET enable_progress_bar = false")
            migrate(con, path)
        except BaseException as exc:
            con.close()
            release_path(path)
            if isinstance(exc, duckdb.Error):
                raise StoreError(f"cannot prepare {path}: {exc}") from exc
            raise
        return cls(path, con)

    def __enter__(self) -> MonitorStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- plumbing ------------------------------------------------------------------------

    def _insert_new(self, table: tables.Table, batch: pa.Table) -> int:
        lo, hi = batches.time_range(batch, table.time_column)
        with self._writing(f"adding {table.name}") as con:
            return writes.insert_new(con, table, batch, lo, hi)

    # ---- writes --------------------------------------------------------------------------

    def upsert_sandboxes(self, rows: Sequence[SandboxRow]) -> int:
        """Insert new sandboxes; update known ones seen later than before (first_seen_at is
        kept; a sandbox that had ended and is listed again is live again). Returns rows
        inserted or updated."""
        if not rows:
            return 0
        table = batches.sandboxes(rows)
        with self._writing("upserting sandboxes") as con:
            return writes.upsert_sandboxes(con, table)

    def add_samples(self, rows: Sequence[SampleRow]) -> int:
        """Append samples not stored yet, once per (sandbox_id, ts). Returns rows inserted."""
        if not rows:
            return 0
        table = batches.samples(rows)
        lo, hi = batches.time_range(table, "ts")
        with self._writing("adding samples") as con:
            written = writes.insert_new(con, tables.SAMPLES, table, lo, hi)
            done_until = self._rollup_done_until
            if written and done_until is not None and lo < done_until:
                # A backfill reached into minutes already rolled up: have them rebuilt.
                writes.mark_rollup_dirty(con, lo, min(hi, done_until))
            return written

    def add_team_samples(self, rows: Sequence[TeamSampleRow]) -> int:
        """Append team usage rows, once per ts (the first stored wins). Returns rows inserted."""
        return self._insert_new(tables.TEAM_SAMPLES, batches.team_samples(rows)) if rows else 0

    def add_team_maxima(self, rows: Sequence[TeamMaxRow]) -> int:
        """Record team maxima; readers get the latest per (metric, window). An observation
        whose peak equals the latest stored one only moves its observed_at forward, so the
        history holds changes, not every poll. Returns rows inserted or moved forward."""
        if not rows:
            return 0
        table = batches.team_maxima(rows)
        with self._writing("adding team maxima") as con:
            return writes.add_team_maxima(con, table)

    def add_events(self, rows: Sequence[EventRow]) -> int:
        """Append lifecycle events, once per event_id. Returns rows inserted."""
        return self._insert_new(tables.EVENTS, batches.events(rows)) if rows else 0

    def add_log_lines(self, rows: Sequence[LogLineRow]) -> int:
        """Append log lines, once per (sandbox_id, ts, message). Returns rows inserted."""
        return self._insert_new(tables.LOG_LINES, batches.log_lines(rows)) if rows else 0

    def add_incidents(self, rows: Sequence[IncidentRow]) -> int:
        """Append OOM incidents, once per (sandbox_id, kind, occurred_at). Returns rows inserted."""
        return self._insert_new(tables.INCIDENTS, batches.incidents(rows)) if rows else 0

    def mark_ended(self, rows: Sequence[SandboxEndRow]) -> int:
        """Mark sandboxes as gone from the list with their last sighting and, when known,
        their end time and reason (a reason arriving later fills a missing one, never
        replaces one). Sandboxes never upserted are skipped. Returns sandboxes changed."""
        if not rows:
            return 0
        table = batches.sandbox_ends(rows)
        with self._writing("marking sandboxes ended") as con:
            return writes.mark_ended(con, table)

    def replace_templates(self, rows: Sequence[TemplateRow]) -> int:
        """Make the template catalog exactly `rows` (one listing of the team's templates;
        none empties it). Returns the templates stored."""
        batch = batches.templates(rows)
        with self._writing("replacing the template catalog") as con:
            return writes.replace_templates(con, batch)

    def record_run(self, run: CollectorRun) -> None:
        """Record one run of a collector job (for `data_freshness`)."""
        batches.require_aware(run.started_at, "started_at")
        with self._writing("recording a collector run") as con:
            writes.record_run(
                con,
                run.job,
                run.started_at,
                run.ended_at,
                run.rows_written,
                run.error,
                run.retry_after_s,
            )

    def save_snapshot(self, kind: str, json_text: str, at: datetime) -> None:
        """Keep `json_text` as the latest document of `kind` ("templates", "webhooks")."""
        batches.require_aware(at, "at")
        with self._writing(f"saving the {kind} snapshot") as con:
            writes.save_snapshot(con, kind, json_text, at)

    def record_action(
        self,
        at: datetime,
        actor: str,
        action: str,
        sandbox_ids: Sequence[str],
        outcome: str,
        detail: str,
    ) -> None:
        """Audit one dashboard action (pause, extend, delete, ...) and its outcome."""
        batches.require_aware(at, "at")
        with self._writing("recording an action") as con:
            writes.record_action(con, at, actor, action, sandbox_ids, outcome, detail)
