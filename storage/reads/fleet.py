"""The fleet now: which sandboxes there are, one sandbox's record, the triage table (each
sandbox's latest sample, trends and life-long memory peak) and the team's latest peaks."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from storage import tables
from storage.base import StoreBase, utc
from storage.batches import require_aware
from storage.downsample import floor_minute
from storage.reads import latest_samples
from storage.reads.arguments import epoch_us
from storage.reads.latest_samples import LATEST_COLUMNS

# The latest sample of a live sandbox sits in the last few row groups: look there first and
# only further back for the few sandboxes (paused, ended) not sampled lately.
_RECENT = timedelta(minutes=15)
# Sample times come from the API, like started_at; a little slack covers rounding.
_BEFORE_START = timedelta(minutes=1)
_TRIAGE_EXTRA = [
    *LATEST_COLUMNS,
    "peak_mem_used_bytes",
    "mem_slope_bytes_per_s",
    "disk_slope_bytes_per_s",
]
# Remembered latest samples of sandboxes no longer sampled; forgotten all at once past this
# many (a few hundred bytes each, so at most some MiB).
_OLDER_CACHE_MAX = 50_000
# (seen_until, the latest sample's LATEST_COLUMNS values or None when none is stored)
_Older = tuple[datetime, tuple[object, ...] | None]


@dataclass(frozen=True)
class SandboxRecord:
    """One sandbox as stored: its latest listed details, when it was first and last seen,
    and its end if it left the list. Fields are the `sandboxes` table's columns; times are
    aware UTC, `end_at` is the scheduled end (timeout), `ended_at` the actual one."""

    sandbox_id: str
    template_id: str
    alias: str | None
    state: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    started_at: datetime
    end_at: datetime
    metadata_json: str
    first_seen_at: datetime
    last_seen_at: datetime
    ended: bool
    ended_at: datetime | None
    end_reason: str | None


# Kept in step with the table by tests/storage/reads/test_fleet.py.
_RECORD_FIELDS = tuple(f.name for f in fields(SandboxRecord))


def _record(row: Sequence[Any]) -> SandboxRecord:
    values: dict[str, Any] = {
        name: utc(v) if isinstance(v, datetime) else v
        for name, v in zip(_RECORD_FIELDS, row, strict=True)
    }
    return SandboxRecord(**values)


class FleetReads(StoreBase):
    """The sandboxes now."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(path, con)
        self._older_cache: dict[str, _Older] = {}
        self._older_lock = threading.Lock()

    def sandboxes(self, include_ended: bool = False) -> pd.DataFrame:
        """Known sandboxes, newest first (by first sighting); ended ones only if asked.

        Columns: those of the `sandboxes` table, the fields of `SandboxRecord`.
        """
        return self._query(
            f"""SELECT {tables.SANDBOXES.select_list()} FROM sandboxes WHERE ? OR NOT ended
            ORDER BY first_seen_at DESC, sandbox_id""",
            [include_ended],
        )

    def sandbox_record(self, sandbox_id: str) -> SandboxRecord | None:
        """One sandbox, ended or not; None when it is unknown."""
        return self.sandbox_records([sandbox_id]).get(sandbox_id)

    def sandbox_records(self, sandbox_ids: Iterable[str]) -> dict[str, SandboxRecord]:
        """The known ones of `sandbox_ids`, ended or not, by ID, in one query (a first events
        run may end thousands of sandboxes at once)."""
        wanted = pa.table({"sandbox_id": pa.array(sorted(set(sandbox_ids)), pa.string())})
        with self._reading() as cur:
            cur.register("_wanted", wanted)
            rows = cur.execute(
                f"SELECT {tables.SANDBOXES.select_list(names=_RECORD_FIELDS)} FROM sandboxes"
                " WHERE sandbox_id IN (SELECT sandbox_id FROM _wanted)"
            ).fetchall()
            cur.unregister("_wanted")
        records = (_record(row) for row in rows)
        return {record.sandbox_id: record for record in records}

    def live_sandbox_ids(self) -> set[str]:
        """Ids of sandboxes seen and not marked ended."""
        with self._reading() as cur:
            rows = cur.execute("SELECT sandbox_id FROM sandboxes WHERE NOT ended").fetchall()
        return {r[0] for r in rows}

    def team_peaks(self) -> pd.DataFrame:
        """The latest team maximum per metric and window.

        Columns: metric, window ("1h", "24h", "7d"), value, peak_at, observed_at (UTC).
        """
        return self._query(
            """SELECT metric, "window", value, peak_at, observed_at FROM team_maxima
            QUALIFY row_number() OVER (PARTITION BY metric, "window" ORDER BY observed_at DESC) = 1
            ORDER BY metric, "window" """
        )

    def triage_rows(
        self, now: datetime, trend_window_s: float = 300.0, include_ended: bool = False
    ) -> pd.DataFrame:
        """One row per sandbox (live ones, or all with `include_ended`), newest first.

        Columns: those of `sandboxes()`, then from the samples at or before `now`:
        last_sample_at (UTC), cpu_used_pct, mem_used_bytes, mem_total_bytes, mem_cache_bytes,
        disk_used_bytes, disk_total_bytes (the latest sample; NaT/NaN when none),
        peak_mem_used_bytes (max over the sandbox's stored life: per-minute rollup plus the
        raw samples not rolled up yet), mem_slope_bytes_per_s and disk_slope_bytes_per_s
        (least-squares slope over the samples in [now - trend_window_s, now]; NaN with fewer
        than 3 samples). Numbers are float64.
        """
        require_aware(now, "now")
        if trend_window_s <= 0:
            raise ValueError(f"trend_window_s must be positive, got {trend_window_s}")
        boxes = self.sandboxes(include_ended)
        if boxes.empty:
            return boxes.reindex(columns=[*boxes.columns, *_TRIAGE_EXTRA])
        earliest = min(boxes["started_at"].min(), boxes["first_seen_at"].min())
        stats = self._sample_stats(now, trend_window_s, earliest.to_pydatetime())
        # Plain floats with NaN for "no sample", whatever DuckDB's NULL handling gave.
        stats[_TRIAGE_EXTRA[1:]] = stats[_TRIAGE_EXTRA[1:]].astype("float64")
        older = (
            stats["last_sample_at"].isna()
            & stats["seen_until"].notna()
            & stats["sandbox_id"].isin(boxes["sandbox_id"])
        )
        wanted = {
            sandbox_id: seen.to_pydatetime()
            for sandbox_id, seen in zip(
                stats["sandbox_id"][older], stats["seen_until"][older], strict=True
            )
        }
        stats = stats.drop(columns="seen_until").set_index("sandbox_id")
        if wanted:
            found = self._older_latest(wanted, now)
            stats.loc[found.index, LATEST_COLUMNS] = found[LATEST_COLUMNS]
        rows = boxes.merge(stats.reset_index(), on="sandbox_id", how="left")
        return rows[[*boxes.columns, *_TRIAGE_EXTRA]]

    def _sample_stats(
        self, now: datetime, trend_window_s: float, earliest: datetime
    ) -> pd.DataFrame:
        """`latest_samples.STATS_SQL` for sandboxes started at or after `earliest`."""
        trend_from = now - timedelta(seconds=trend_window_s)
        life_from = floor_minute(utc(earliest) - _BEFORE_START)
        done = self._rollup_done_until
        # Minutes before `until` come from the rollup; the minute holding `now` must not.
        until = life_from if done is None else max(life_from, min(done, floor_minute(utc(now))))
        params = {
            "now": now,
            "now_us": epoch_us(now),
            "recent_from": min(now - _RECENT, trend_from),
            "trend_from": trend_from,
            "life_from": life_from,
            "until": until,
        }
        return self._query(latest_samples.STATS_SQL, params)

    def _older_latest(self, wanted: dict[str, datetime], now: datetime) -> pd.DataFrame:
        """The latest sample (`LATEST_COLUMNS`, indexed by sandbox_id) of each sandbox in
        `wanted`, which maps it to its `seen_until` (its last sample is in the minute from
        there). Such a sample no longer changes (a newer one would be in the recent window),
        so it is remembered per (sandbox, seen_until) and read once."""
        with self._older_lock:
            known = {i: self._older_cache.get(i) for i in wanted}
        got = {i: k[1] for i, k in known.items() if k is not None and k[0] == wanted[i]}
        todo = {i: seen for i, seen in wanted.items() if i not in got}
        # Samples older than those kept are gone: nothing to read.
        kept = self._raw_kept_from
        readable = {
            i: s for i, s in todo.items() if kept is None or s + timedelta(minutes=1) > kept
        }
        found: dict[str, tuple[object, ...]] = {}
        if readable:
            sql, params = latest_samples.older_latest_query(readable, now)
            for row in self._query(sql, params).itertuples(index=False):
                found[row[0]] = tuple(row[1:])
        with self._older_lock:
            if len(self._older_cache) > _OLDER_CACHE_MAX:
                self._older_cache.clear()
            for sandbox_id, seen in todo.items():
                got[sandbox_id] = found.get(sandbox_id)
                self._older_cache[sandbox_id] = (seen, got[sandbox_id])
        records = [(i, *row) for i, row in got.items() if row is not None]
        frame = pd.DataFrame.from_records(records, columns=["sandbox_id", *LATEST_COLUMNS])
        return frame.set_index("sandbox_id")
