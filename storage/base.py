"""The connection plumbing shared by the store's parts: one writer connection behind a lock,
a fresh cursor per read.

Writes (and maintenance steps) take the writer lock and run on the store's own connection,
one transaction each. Reads take no lock: each runs on a new cursor (its own connection to
the same database), sees the last committed state and never waits for a writer (MVCC).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from storage.errors import StoreError

# maintenance_state names
ROLLUP_DONE_UNTIL = "rollup_done_until"
RAW_KEPT_FROM = "raw_kept_from"
ROLLUP_KEPT_FROM = "rollup_kept_from"


def utc(value: datetime) -> datetime:
    """`value` (aware) as a datetime in `datetime.UTC`."""
    return value.astimezone(UTC)


def load_state(con: duckdb.DuckDBPyConnection, name: str) -> datetime | None:
    """A maintenance watermark (UTC), None when never set."""
    row = con.execute(
        "SELECT max(value_at) FROM maintenance_state WHERE name = ?", [name]
    ).fetchone()
    return utc(row[0]) if row is not None and row[0] is not None else None


def save_state(con: duckdb.DuckDBPyConnection, name: str, at: datetime) -> None:
    con.execute("DELETE FROM maintenance_state WHERE name = ?", [name])
    con.execute("INSERT INTO maintenance_state VALUES (?, ?)", [name, at])


# Files this process has open. DuckDB would let a second connect in the same process share
# the database, but two stores with two writer locks would race their dedup checks.
_open_paths: set[Path] = set()
_open_paths_lock = threading.Lock()


def claim_path(path: Path) -> bool:
    """Register `path` as open in this process; False when it already is."""
    with _open_paths_lock:
        if path.resolve() in _open_paths:
            return False
        _open_paths.add(path.resolve())
        return True


def release_path(path: Path) -> None:
    with _open_paths_lock:
        _open_paths.discard(path.resolve())


class StoreBase:
    """Holds the connection; the store's parts subclass it."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = con
        # Readers branch their cursors off this one, never off the writer's connection, so
        # making a cursor never waits for a statement running on the writer.
        self._reader_root = con.cursor()
        self._lock = threading.Lock()
        # Cached so each sample write knows, without a query, whether it lands in minutes
        # that are already rolled up. Only changed under the writer lock.
        self._rollup_done_until = load_state(con, ROLLUP_DONE_UNTIL)
        # Cached for the series questions (which table a range needs); set by forget_old.
        self._raw_kept_from = load_state(con, RAW_KEPT_FROM)

    def close(self) -> None:
        """Checkpoint (fold the write-ahead log into the file) and close. Idempotent."""
        with self._lock:
            if self._con is None:
                return
            con, self._con = self._con, None
            try:
                con.execute("CHECKPOINT")
            finally:
                self._reader_root.close()
                con.close()
                release_path(self.path)

    @contextmanager
    def _writing(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer connection inside one transaction, under the writer lock. DuckDB
        errors come out as `StoreError` naming `what`; the transaction is rolled back."""
        with self._lock:
            if self._con is None:
                raise StoreError(f"{self.path} is closed")
            con = self._con
            con.begin()
            try:
                yield con
                con.commit()
            except BaseException as exc:
                # A failed commit has already ended the transaction.
                with suppress(duckdb.Error):
                    con.rollback()
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"{what} failed on {self.path}: {exc}") from exc
                raise

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for one read; DuckDB errors come out as `StoreError`."""
        if self._con is None:
            raise StoreError(f"{self.path} is closed")
        cur = self._reader_root.cursor()
        try:
            cur.execute("SET enable_progress_bar = false")
            yield cur
        except duckdb.Error as exc:
            raise StoreError(f"reading {self.path} failed: {exc}") from exc
        finally:
            cur.close()

    def _query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> pd.DataFrame:
        """One read as a DataFrame (time columns `datetime64[us, UTC]`)."""
        bound = dict(params) if isinstance(params, Mapping) else list(params)
        with self._reading() as cur:
            return cur.execute(sql, bound).df()
