"""The operations dashboard's questions: team activity, the triage table, one sandbox's
record, incidents, events, audit and logs. Answered as pandas DataFrames.

Same conventions as `storage.questions`: time columns are `datetime64[us, UTC]`, sizes are
bytes, CPU is percent of the sandbox's vCPUs (0-100); each call runs on its own cursor.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from storage import latest_samples
from storage.base import utc
from storage.batches import require_aware
from storage.downsample import floor_minute
from storage.latest_samples import LATEST_COLUMNS
from storage.questions import SANDBOX_COLUMNS, Questions

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
# Remembered latest samples of sandboxes no longer sampled; forgotten all at once past this.
_OLDER_CACHE_MAX = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (seen_until, the latest sample's LATEST_COLUMNS values or None when none is stored)
_Older = tuple[datetime, tuple[object, ...] | None]


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")


class OpsQuestions(Questions):
    """The read side of the operations pages (triage, sandbox detail, audit)."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(path, con)
        self._older_cache: dict[str, _Older] = {}
        self._older_lock = threading.Lock()

    def team_activity(self, start: datetime, end: datetime, max_points: int) -> pd.DataFrame:
        """The team's concurrency and start rate over [start, end) in at most `max_points`
        buckets of ceil(range / max_points) s from `start`, from the team samples.

        Columns: bucket_start (UTC), concurrent_sandboxes (max in the bucket),
        sandbox_start_rate (starts per second, max in the bucket). Empty buckets are left out.
        """
        require_aware(start, "start")
        require_aware(end, "end")
        if end <= start:
            raise ValueError(f"empty range: start {start} is not before end {end}")
        if max_points < 1:
            raise ValueError(f"max_points must be at least 1, got {max_points}")
        width_us = max(1, math.ceil((end - start).total_seconds() / max_points)) * 1_000_000
        start_us = _epoch_us(start)
        df = self._query(
            f"""SELECT (epoch_us(ts) - {start_us}) // {width_us} AS bucket,
                max(concurrent_sandboxes) AS concurrent_sandboxes,
                max(sandbox_start_rate) AS sandbox_start_rate
            FROM team_samples WHERE ts >= $start AND ts < $end
            GROUP BY bucket ORDER BY bucket""",
            {"start": start, "end": end},
        )
        starts = start_us + df.pop("bucket").astype("int64") * width_us
        df.insert(0, "bucket_start", pd.to_datetime(starts, unit="us", utc=True))
        return df

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
            "now_us": _epoch_us(now),
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

    def sandbox_record(self, sandbox_id: str) -> dict[str, object] | None:
        """The `sandboxes()` columns of one sandbox, ended or not, as a dict (datetimes
        UTC-aware, None for NULL); None when the sandbox is unknown."""
        with self._reading() as cur:
            cur.execute(
                f"SELECT {SANDBOX_COLUMNS} FROM sandboxes WHERE sandbox_id = ?", [sandbox_id]
            )
            row = cur.fetchone()
            names = [d[0] for d in cur.description or ()]
        if row is None:
            return None
        return {
            name: utc(value) if isinstance(value, datetime) else value
            for name, value in zip(names, row, strict=True)
        }

    def sandbox_incidents(self, sandbox_id: str) -> pd.DataFrame:
        """The sandbox's OOM incidents, oldest first; the columns of `incidents_since`:
        sandbox_id, kind, at, detected_at (UTC), process, pid, mem_used_bytes,
        mem_total_bytes, evidence, template_id, alias."""
        return self._query(
            """SELECT i.sandbox_id, i.kind, i.occurred_at AS at, i.detected_at, i.process, i.pid,
                i.mem_used_bytes, i.mem_total_bytes, i.evidence, s.template_id, s.alias
            FROM incidents i LEFT JOIN sandboxes s USING (sandbox_id)
            WHERE i.sandbox_id = ? ORDER BY i.occurred_at, i.kind""",
            [sandbox_id],
        )

    def latest_events(self, limit: int, sandbox_id: str | None = None) -> pd.DataFrame:
        """The `limit` newest lifecycle events, of one sandbox or all, newest first; the
        columns of `events_since`: ts (UTC), event_id, sandbox_id, type, team_id,
        kill_reason, event_data_json."""
        _check_limit(limit)
        return self._query(
            """SELECT ts, event_id, sandbox_id, type, team_id, kill_reason, event_data_json
            FROM events WHERE $id IS NULL OR sandbox_id = $id
            ORDER BY ts DESC, event_id DESC LIMIT $limit""",
            {"id": sandbox_id, "limit": limit},
        )

    def actions_since(self, since: datetime, limit: int = 500) -> pd.DataFrame:
        """Audited dashboard actions at or after `since`, newest first, at most `limit`.

        Columns: acted_at (UTC), actor, action, sandbox_ids (list[str]), outcome, detail.
        """
        require_aware(since, "since")
        _check_limit(limit)
        df = self._query(
            """SELECT acted_at, actor, action, sandbox_ids, outcome, detail FROM actions
            WHERE acted_at >= $since ORDER BY acted_at DESC LIMIT $limit""",
            {"since": since, "limit": limit},
        )
        # DuckDB hands lists over as numpy arrays.
        df["sandbox_ids"] = pd.Series(
            [[str(v) for v in ids] for ids in df["sandbox_ids"]], index=df.index, dtype=object
        )
        return df

    def logs_between(
        self, sandbox_id: str, start: datetime, end: datetime, limit: int = 500
    ) -> pd.DataFrame:
        """The sandbox's stored log lines in [start, end), in time order; the newest `limit`
        when there are more. Columns: ts (UTC), level, message, fields_json."""
        require_aware(start, "start")
        require_aware(end, "end")
        _check_limit(limit)
        return self._query(
            """SELECT * FROM (
                SELECT ts, level, message, fields_json FROM log_lines
                WHERE sandbox_id = $id AND ts >= $start AND ts < $end
                ORDER BY ts DESC, message DESC LIMIT $limit)
            ORDER BY ts, message""",
            {"id": sandbox_id, "start": start, "end": end, "limit": limit},
        )


def _epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (utc(value) - _EPOCH) // timedelta(microseconds=1)
