"""The dashboard's questions, answered as pandas DataFrames.

Every time column is `datetime64[us, UTC]`; sizes are bytes, CPU percentages are percent of
the sandbox's vCPUs (0-100), `cpu_used_vcpus` is vCPUs busy (percent / 100 * vCPUs). Each
call runs on its own cursor, so any thread may ask while collectors write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from storage.base import StoreBase
from storage.batches import require_aware
from storage.downsample import Plan, sandbox_plan, team_plan
from storage.tables import SAMPLE_GAUGE_NAMES, rollup_max_of

# What `sandboxes()` answers per sandbox, in order (shared with the ops questions).
SANDBOX_COLUMNS = """sandbox_id, template_id, alias, state, cpu_count, memory_mb, disk_size_mb,
    started_at, end_at, first_seen_at, last_seen_at, ended, ended_at, end_reason, metadata_json"""
_HOTTEST_ORDER = {"mem": "peak_mem_pct", "cpu": "peak_cpu_pct", "disk": "peak_disk_pct"}
_HOTTEST_COLUMNS = [
    "sandbox_id",
    "template_id",
    "alias",
    "state",
    "ended",
    "peak_mem_pct",
    "peak_cpu_pct",
    "peak_disk_pct",
    "peak_mem_used_bytes",
    "mem_used_bytes",
    "mem_total_bytes",
    "cpu_used_pct",
    "disk_used_bytes",
    "disk_total_bytes",
    "last_sample_at",
    "samples",
]
_SAMPLE_MAXIMA = ", ".join(f"max({g}) AS {g}" for g in SAMPLE_GAUGE_NAMES)
_GAUGES = ", ".join(SAMPLE_GAUGE_NAMES)
# The per-minute maxima of the rollup, named as the gauges they are the maxima of.
_ROLLUP_MAXIMA = ", ".join(f"{rollup_max_of(g).name} AS {g}" for g in SAMPLE_GAUGE_NAMES)
_TEAM_MAXIMA = """max(sandboxes) AS sandboxes, max(cpu_used_vcpus) AS cpu_used_vcpus,
    max(cpu_total_vcpus) AS cpu_total_vcpus, max(mem_used_bytes) AS mem_used_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    max(disk_used_bytes) AS disk_used_bytes, max(disk_total_bytes) AS disk_total_bytes"""
# One sandbox's contribution to team totals: its maximum of each gauge in a group.
_PER_SANDBOX = """max(cpu_used_pct * cpu_count / 100) AS cpu_used_vcpus,
    max(cpu_count) AS cpu_count, max(mem_used_bytes) AS mem_used_bytes,
    max(mem_total_bytes) AS mem_total_bytes,
    max(disk_used_bytes) AS disk_used_bytes, max(disk_total_bytes) AS disk_total_bytes"""
# sum() of BIGINT is HUGEINT, which pandas would turn into float: cast back.
_SUMS = """count(*) AS sandboxes, sum(cpu_used_vcpus) AS cpu_used_vcpus,
    sum(cpu_count)::INTEGER AS cpu_total_vcpus, sum(mem_used_bytes)::BIGINT AS mem_used_bytes,
    sum(mem_total_bytes)::BIGINT AS mem_total_bytes,
    sum(disk_used_bytes)::BIGINT AS disk_used_bytes,
    sum(disk_total_bytes)::BIGINT AS disk_total_bytes"""


def _origin_us(plan: Plan) -> int:
    return int(plan.origin.timestamp()) * 1_000_000 + plan.origin.microsecond


class Questions(StoreBase):
    """The read side the dashboard uses."""

    def _query(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> pd.DataFrame:
        bound = dict(params) if isinstance(params, Mapping) else list(params)
        with self._reading() as cur:
            return cur.execute(sql, bound).df()

    def _buckets(self, plan: Plan, sql: str, params: Mapping[str, object]) -> pd.DataFrame:
        """Run `sql`, whose first column `bucket` numbers the plan's buckets, and put each
        bucket's start (UTC) in its place. Made here rather than in SQL: cheaper by a
        couple of milliseconds on the 5 s refresh path."""
        df = self._query(sql, params)
        starts = _origin_us(plan) + df.pop("bucket").astype("int64") * plan.width_us
        df.insert(0, "bucket_start", pd.to_datetime(starts, unit="us", utc=True))
        return df

    def team_usage(self, start: datetime, end: datetime, max_points: int) -> pd.DataFrame:
        """Team totals over [start, end) in at most `max_points` buckets.

        Columns: bucket_start (UTC), sandboxes (sandboxes sampled), cpu_used_vcpus,
        cpu_total_vcpus (sum of their vCPU counts), mem_used_bytes, mem_total_bytes (sum of
        limits), disk_used_bytes, disk_total_bytes.
        A bucket holds, per gauge, the largest team total seen in it: for ranges up to 15
        minutes the sum of each sandbox's max in the bucket (buckets >= 5 s); beyond, the
        largest of the per-minute totals (buckets of whole minutes, aligned to the minute).
        """
        require_aware(start, "start")
        require_aware(end, "end")
        plan = team_plan(
            start,
            end,
            max_points,
            raw_kept_from=self._raw_kept_from,
            rollup_done_until=self._rollup_done_until,
        )
        origin_us, width_us = _origin_us(plan), plan.width_us
        if plan.rollup_until is None:
            sql = f"""SELECT bucket, {_SUMS} FROM (
                    SELECT sandbox_id, (epoch_us(ts) - {origin_us}) // {width_us} AS bucket,
                        {_PER_SANDBOX}
                    FROM samples WHERE ts >= $start AND ts < $end GROUP BY ALL)
                GROUP BY bucket ORDER BY bucket"""
            return self._buckets(plan, sql, {"start": start, "end": end})
        sql = f"""WITH minutes AS (
                SELECT epoch_us(minute) // 60000000 AS k, sandboxes,
                    cpu_used_vcpus_max AS cpu_used_vcpus, cpu_total_vcpus,
                    mem_used_bytes_max AS mem_used_bytes,
                    mem_total_bytes, disk_used_bytes_max AS disk_used_bytes, disk_total_bytes
                FROM team_1m WHERE minute >= $origin AND minute < $until AND minute < $end
                UNION ALL
                SELECT k, {_SUMS} FROM (
                    SELECT sandbox_id, epoch_us(ts) // 60000000 AS k, {_PER_SANDBOX}
                    FROM samples WHERE ts >= $until AND ts >= $origin AND ts < $end GROUP BY ALL)
                GROUP BY k)
            SELECT (k * 60000000 - {origin_us}) // {width_us} AS bucket, {_TEAM_MAXIMA}
            FROM minutes GROUP BY bucket ORDER BY bucket"""
        params = {"origin": plan.origin, "until": plan.rollup_until, "end": end}
        return self._buckets(plan, sql, params)

    def sandbox_series(
        self, sandbox_id: str, start: datetime, end: datetime, max_points: int
    ) -> pd.DataFrame:
        """One sandbox over [start, end) in at most `max_points` buckets, each holding the
        maximum of every gauge in it (a one-sample spike survives).

        Columns: bucket_start (UTC), samples (raw samples behind the bucket), cpu_count,
        cpu_used_pct, mem_used_bytes, mem_total_bytes, mem_cache_bytes, disk_used_bytes,
        disk_total_bytes. Buckets are ceil(range / max_points) s wide from raw samples, or
        whole minutes from the per-minute rollup for long ranges (> 6 h) or ranges older than
        the raw samples kept.
        """
        require_aware(start, "start")
        require_aware(end, "end")
        plan = sandbox_plan(
            start,
            end,
            max_points,
            raw_kept_from=self._raw_kept_from,
            rollup_done_until=self._rollup_done_until,
        )
        bucket = f"(epoch_us(t) - {_origin_us(plan)}) // {plan.width_us} AS bucket"
        if plan.rollup_until is None:
            # The common, refreshed-every-5-s case: straight from the raw samples.
            sql = f"""SELECT {bucket}, count(*) AS samples, {_SAMPLE_MAXIMA}
                FROM (SELECT *, ts AS t FROM samples
                      WHERE sandbox_id = $id AND ts >= $start AND ts < $end)
                GROUP BY bucket ORDER BY bucket"""
            return self._buckets(plan, sql, {"id": sandbox_id, "start": start, "end": end})
        sql = f"""SELECT {bucket}, sum(n)::BIGINT AS samples, {_SAMPLE_MAXIMA} FROM (
                SELECT minute AS t, samples AS n, {_ROLLUP_MAXIMA}
                FROM samples_1m
                WHERE sandbox_id = $id AND minute >= $origin AND minute < $until
                UNION ALL
                SELECT ts, 1, {_GAUGES}
                FROM samples WHERE sandbox_id = $id AND ts >= $until AND ts < $end)
            GROUP BY bucket ORDER BY bucket"""
        params = {"id": sandbox_id, "origin": plan.origin, "until": plan.rollup_until, "end": end}
        return self._buckets(plan, sql, params)

    def hottest_sandboxes(self, since: datetime, limit: int, by: str = "mem") -> pd.DataFrame:
        """The `limit` sandboxes with the highest peak since `since` (raw samples), by peak
        memory % of limit ("mem"), CPU % ("cpu") or disk % of its size ("disk").

        Columns: sandbox_id, template_id, alias, state, ended, peak_mem_pct, peak_cpu_pct,
        peak_disk_pct, peak_mem_used_bytes, mem_used_bytes, mem_total_bytes, cpu_used_pct,
        disk_used_bytes, disk_total_bytes (the last four and mem_used_bytes from the latest
        sample), last_sample_at (UTC), samples.
        """
        require_aware(since, "since")
        if by not in _HOTTEST_ORDER:
            raise ValueError(f"by must be one of {', '.join(_HOTTEST_ORDER)}, got {by!r}")
        # Two cheap steps instead of one wide aggregate (arg_max per column doubled the
        # time): the peaks over the window, then the latest sample of the few winners only,
        # read from the few row groups at or after their last sample.
        peaks = self._query(
            f"""SELECT sandbox_id,
                max(100 * mem_used_bytes::DOUBLE / nullif(mem_total_bytes, 0)) AS peak_mem_pct,
                max(cpu_used_pct) AS peak_cpu_pct,
                max(100 * disk_used_bytes::DOUBLE / nullif(disk_total_bytes, 0))
                    AS peak_disk_pct,
                max(mem_used_bytes) AS peak_mem_used_bytes,
                max(ts) AS last_sample_at, count(*) AS samples
            FROM samples WHERE ts >= $since GROUP BY sandbox_id
            ORDER BY {_HOTTEST_ORDER[by]} DESC NULLS LAST, sandbox_id LIMIT $limit""",
            {"since": since, "limit": limit},
        )
        ids = peaks["sandbox_id"].tolist()
        latest_from: datetime = peaks["last_sample_at"].min().to_pydatetime() if ids else since
        details = self._query(
            """SELECT ids.sandbox_id, s.template_id, s.alias, s.state, s.ended,
                l.mem_used_bytes, l.mem_total_bytes, l.cpu_used_pct, l.disk_used_bytes,
                l.disk_total_bytes
            FROM (SELECT unnest($ids::VARCHAR[]) AS sandbox_id) ids
            LEFT JOIN sandboxes s USING (sandbox_id)
            LEFT JOIN (
                SELECT * FROM samples
                WHERE ts >= $from AND list_contains($ids::VARCHAR[], sandbox_id)
                QUALIFY row_number() OVER (PARTITION BY sandbox_id ORDER BY ts DESC) = 1
            ) l USING (sandbox_id)""",
            {"ids": ids, "from": latest_from},
        )
        merged = details.merge(peaks, on="sandbox_id", how="right")
        return merged[_HOTTEST_COLUMNS]

    def team_peaks(self) -> pd.DataFrame:
        """The latest team maximum per metric and window.

        Columns: metric, window ("1h", "24h", "7d"), value, peak_at, observed_at (UTC).
        """
        return self._query(
            """SELECT metric, "window", value, peak_at, observed_at FROM team_maxima
            QUALIFY row_number() OVER (PARTITION BY metric, "window" ORDER BY observed_at DESC) = 1
            ORDER BY metric, "window" """
        )

    def incidents_since(self, since: datetime) -> pd.DataFrame:
        """OOM incidents at or after `since`, oldest first.

        Columns: sandbox_id, kind, at, detected_at (UTC), process, pid, mem_used_bytes,
        mem_total_bytes, evidence, template_id, alias.
        """
        require_aware(since, "since")
        return self._query(
            """SELECT i.sandbox_id, i.kind, i.occurred_at AS at, i.detected_at, i.process, i.pid,
                i.mem_used_bytes, i.mem_total_bytes, i.evidence, s.template_id, s.alias
            FROM incidents i LEFT JOIN sandboxes s USING (sandbox_id)
            WHERE i.occurred_at >= ? ORDER BY i.occurred_at, i.sandbox_id""",
            [since],
        )

    def logs_around(self, sandbox_id: str, at: datetime, before: int, after: int) -> pd.DataFrame:
        """The sandbox's `before` stored log lines at or before `at` and `after` lines after
        it, in time order. Columns: ts (UTC), level, message, fields_json."""
        require_aware(at, "at")
        return self._query(
            """SELECT * FROM (
                SELECT ts, level, message, fields_json FROM (
                    SELECT * FROM log_lines WHERE sandbox_id = $id AND ts <= $at
                    ORDER BY ts DESC LIMIT $before)
                UNION ALL
                SELECT ts, level, message, fields_json FROM (
                    SELECT * FROM log_lines WHERE sandbox_id = $id AND ts > $at
                    ORDER BY ts LIMIT $after))
            ORDER BY ts""",
            {"id": sandbox_id, "at": at, "before": before, "after": after},
        )

    def sandboxes(self, include_ended: bool = False) -> pd.DataFrame:
        """Known sandboxes, newest first (by first sighting); ended ones only if asked.

        Columns: sandbox_id, template_id, alias, state, cpu_count, memory_mb, disk_size_mb,
        started_at, end_at (scheduled end), first_seen_at, last_seen_at, ended, ended_at,
        end_reason (times UTC), metadata_json.
        """
        return self._query(
            f"""SELECT {SANDBOX_COLUMNS} FROM sandboxes WHERE ? OR NOT ended
            ORDER BY first_seen_at DESC, sandbox_id""",
            [include_ended],
        )

    def events_since(self, since: datetime, sandbox_id: str | None = None) -> pd.DataFrame:
        """Lifecycle events at or after `since`, oldest first, of one sandbox or all.

        Columns: ts (UTC), event_id, sandbox_id, type, team_id, kill_reason, event_data_json.
        """
        require_aware(since, "since")
        return self._query(
            """SELECT ts, event_id, sandbox_id, type, team_id, kill_reason, event_data_json
            FROM events WHERE ts >= ? AND (? IS NULL OR sandbox_id = ?) ORDER BY ts, event_id""",
            [since, sandbox_id, sandbox_id],
        )

    def data_freshness(self, now: datetime) -> pd.DataFrame:
        """Per collector job, how fresh its data is at `now`.

        Columns: job, last_run_at (end of its latest run), last_success_at (UTC, NaT if never),
        age_s (seconds from last_success_at to `now`, NaN if never), rows_written (latest
        run), last_error (latest run's error, None if it succeeded), retry_after_s.
        """
        require_aware(now, "now")
        df = self._query(
            """SELECT job, max(ended_at) AS last_run_at,
                max(ended_at) FILTER (WHERE error IS NULL) AS last_success_at,
                arg_max(rows_written, started_at) AS rows_written,
                arg_max_null(error, started_at) AS last_error,
                arg_max_null(retry_after_s, started_at) AS retry_after_s
            FROM collector_runs GROUP BY job ORDER BY job"""
        )
        df.insert(3, "age_s", (pd.Timestamp(now) - df["last_success_at"]).dt.total_seconds())
        return df
