"""Background maintenance: the per-minute rollups and retention.

Both work in short steps, each its own transaction under the writer lock, so a collector's
write waits at most one step and readers never wait (DuckDB's MVCC). Watermarks in
`maintenance_state` make both resumable after a crash or restart.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import duckdb

from storage import tables
from storage.base import (
    RAW_KEPT_FROM,
    ROLLUP_DONE_UNTIL,
    ROLLUP_KEPT_FROM,
    StoreBase,
    load_state,
    save_state,
    utc,
)
from storage.batches import require_aware
from storage.downsample import MINUTE, floor_minute

# Minutes younger than this are left for the next roll_up: samples of a minute arrive up to
# one poll interval (plus the request) after it ends. Later ones (a backfill) mark the
# minutes dirty and roll_up rebuilds them.
ROLLUP_GRACE = timedelta(minutes=2)
ROLLUP_STEP = timedelta(hours=1)
# About 720k samples a step at 1,000 sandboxes every 5 s.
FORGET_STEP = timedelta(hours=1)
# Python's Lock does not hand over to a waiting thread on release; a short pause between
# steps lets a waiting collector write get in.
_PAUSE_BETWEEN_STEPS_S = 0.005


# Each rollup column's aggregate over a minute's raw samples, in the column order.
_ROLLUP_AGGREGATES = ", ".join(
    f"{c.rolled_up[0]}({c.rolled_up[1]})" for c in tables.SAMPLES_1M.columns if c.rolled_up
)


def _rebuild_minutes(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> int:
    """Replace the rollups of the minutes in [lo, hi) from raw samples. Returns the minutes
    that had samples."""
    con.execute("DELETE FROM samples_1m WHERE minute >= ? AND minute < ?", [lo, hi])
    con.execute("DELETE FROM team_1m WHERE minute >= ? AND minute < ?", [lo, hi])
    # Group on the integer minute and make the timestamp once per group: cheaper than
    # truncating every sample's TIMESTAMPTZ.
    con.execute(
        f"""INSERT INTO samples_1m ({tables.SAMPLES_1M.select_list()})
        SELECT sandbox_id, make_timestamp(k * 60000000)::TIMESTAMPTZ, {_ROLLUP_AGGREGATES}
        FROM (SELECT *, epoch_us(ts) // 60000000 AS k FROM samples WHERE ts >= ? AND ts < ?)
        GROUP BY sandbox_id, k ORDER BY k, sandbox_id""",
        [lo, hi],
    )
    row = con.execute(
        """INSERT INTO team_1m (minute, sandboxes, cpu_used_vcpus_max, cpu_used_vcpus_mean,
            mem_used_bytes_max, mem_used_bytes_mean, mem_total_bytes, disk_used_bytes_max,
            disk_total_bytes, cpu_total_vcpus)
        SELECT minute, count(*), sum(cpu_used_pct_max * cpu_count / 100),
            sum(cpu_used_pct_mean * cpu_count / 100), sum(mem_used_bytes_max),
            sum(mem_used_bytes_mean), sum(mem_total_bytes_max), sum(disk_used_bytes_max),
            sum(disk_total_bytes_max), sum(cpu_count)
        FROM samples_1m WHERE minute >= ? AND minute < ? GROUP BY minute ORDER BY minute""",
        [lo, hi],
    ).fetchone()
    return int(row[0]) if row else 0


def _oldest(con: duckdb.DuckDBPyConnection, table: str, column: str) -> datetime | None:
    row = con.execute(f"SELECT min({column}) FROM {table}").fetchone()
    return utc(row[0]) if row and row[0] is not None else None


class Maintenance(StoreBase):
    """roll_up and forget_old, meant for one background job."""

    def roll_up(self, now: datetime) -> int:
        """Roll raw samples up into per-minute rows (max and mean of each gauge per sandbox,
        and team totals), from where the last call stopped up to the minute `ROLLUP_GRACE`
        before `now` (UTC-aware); then rebuild minutes that got late samples. Returns the
        minutes written (minutes with samples, new or rebuilt)."""
        require_aware(now, "now")
        target = floor_minute(utc(now) - ROLLUP_GRACE)
        written = 0
        while True:
            with self._writing("rolling up samples") as con:
                done = load_state(con, ROLLUP_DONE_UNTIL)
                if done is None:
                    oldest = _oldest(con, "samples", "ts")
                    if oldest is None:
                        return written
                    done = floor_minute(oldest)
                if done >= target:
                    break
                step_end = min(done + ROLLUP_STEP, target)
                written += _rebuild_minutes(con, done, step_end)
                save_state(con, ROLLUP_DONE_UNTIL, step_end)
                # Moved before the commit, under the lock: no sample write can slip in between
                # and miss marking these minutes dirty. Should the commit fail, writes only
                # mark a few minutes dirty that need no rebuild.
                self._rollup_done_until = step_end
            time.sleep(_PAUSE_BETWEEN_STEPS_S)
        return written + self._rebuild_dirty()

    def _rebuild_dirty(self) -> int:
        written = 0
        while True:
            with self._writing("rebuilding rollups") as con:
                ranges = con.execute(
                    "SELECT from_ts, until_ts FROM rollup_dirty ORDER BY from_ts"
                ).fetchall()
                raw_from = load_state(con, RAW_KEPT_FROM)
                done = load_state(con, ROLLUP_DONE_UNTIL)
                con.execute("DELETE FROM rollup_dirty")
                # Whole minutes, not older than the raw samples kept (those could not be
                # rebuilt), not past the rolled-up ones (those are rolled up normally).
                spans = []
                for lo, hi in ranges:
                    start = floor_minute(utc(lo))
                    if raw_from is not None:
                        start = max(start, raw_from)
                    end = floor_minute(utc(hi)) + MINUTE
                    if done is not None:
                        end = min(end, done)
                    if start < end:
                        spans.append((start, end))
                if not spans:
                    return written
                lo, hi = spans[0]
                step_end = min(lo + ROLLUP_STEP, hi)
                written += _rebuild_minutes(con, lo, step_end)
                leftover = [(step_end, hi), *spans[1:]] if step_end < hi else spans[1:]
                for start, end in leftover:
                    con.execute("INSERT INTO rollup_dirty VALUES (?, ?)", [start, end - MINUTE])
            time.sleep(_PAUSE_BETWEEN_STEPS_S)

    def forget_old(self, now: datetime, raw_days: float, rollup_days: float) -> None:
        """Delete raw samples (and collector runs) older than `raw_days`, and rollups, team
        samples and maxima, events, log lines and incidents older than `rollup_days`, before
        `now` (UTC-aware). The action audit is kept. Big tables go in steps of an hour of
        data, each its own transaction. Cut-offs are whole minutes."""
        require_aware(now, "now")
        raw_cut = floor_minute(utc(now) - timedelta(days=raw_days))
        rollup_cut = floor_minute(utc(now) - timedelta(days=rollup_days))
        self._forget_in_steps("samples", "ts", raw_cut)
        self._forget_in_steps("samples_1m", "minute", rollup_cut)
        with self._writing("forgetting old rows") as con:
            con.execute("DELETE FROM team_1m WHERE minute < ?", [rollup_cut])
            con.execute("DELETE FROM collector_runs WHERE started_at < ?", [raw_cut])
            for table, column in (
                ("team_samples", "ts"),
                ("events", "ts"),
                ("log_lines", "ts"),
                ("incidents", "occurred_at"),
            ):
                con.execute(f"DELETE FROM {table} WHERE {column} < ?", [rollup_cut])
            # Keep the latest maximum of each metric and window however old it is.
            con.execute(
                """DELETE FROM team_maxima WHERE observed_at < ? AND (metric, "window",
                observed_at) NOT IN (SELECT metric, "window", max(observed_at)
                    FROM team_maxima GROUP BY ALL)""",
                [rollup_cut],
            )
            save_state(con, RAW_KEPT_FROM, raw_cut)
            save_state(con, ROLLUP_KEPT_FROM, rollup_cut)
            self._raw_kept_from = raw_cut

    def _forget_in_steps(self, table: str, column: str, cut: datetime) -> None:
        while True:
            # Each step starts at the oldest row left, so gaps in the data cost no steps.
            with self._reading() as cur:
                row = cur.execute(
                    f"SELECT min({column}) FROM {table} WHERE {column} < ?", [cut]
                ).fetchone()
            if row is None or row[0] is None:
                return
            step_end = min(utc(row[0]) + FORGET_STEP, cut)
            with self._writing(f"forgetting old {table}") as con:
                con.execute(f"DELETE FROM {table} WHERE {column} < ?", [step_end])
            time.sleep(_PAUSE_BETWEEN_STEPS_S)
