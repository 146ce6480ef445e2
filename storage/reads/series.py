"""Gauges over time: one sandbox's series, the team's usage and activity, and the newest
sample time of each sandbox (the collectors' gap check).

A series comes in at most `max_points` buckets, each keeping the maximum of every gauge in
it, so a one-sample spike survives any zoom (`storage.downsample` plans the buckets and
picks raw samples or the per-minute rollup). `cpu_used_vcpus` is vCPUs busy (percent / 100
* vCPUs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa

from storage.base import StoreBase, utc
from storage.batches import require_aware
from storage.downsample import Plan, sandbox_plan, team_plan
from storage.reads.arguments import epoch_us
from storage.tables import SAMPLE_GAUGE_NAMES, rollup_max_of

# How far back `last_sample_at` looks before widening: recent samples sit in the last row
# groups, so the common case (a short restart) reads only those.
_LAST_SAMPLE_LOOKBACKS = (timedelta(minutes=15), timedelta(days=1), None)
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


class SeriesReads(StoreBase):
    """Gauges over time."""

    def _buckets(self, plan: Plan, sql: str, params: Mapping[str, object]) -> pd.DataFrame:
        """Run `sql`, whose first column `bucket` numbers the plan's buckets, and put each
        bucket's start (UTC) in its place. Made here rather than in SQL: cheaper by a
        couple of milliseconds on the 5 s refresh path."""
        df = self._query(sql, params)
        starts = epoch_us(plan.origin) + df.pop("bucket").astype("int64") * plan.width_us
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
        origin_us, width_us = epoch_us(plan.origin), plan.width_us
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
        bucket = f"(epoch_us(t) - {epoch_us(plan.origin)}) // {plan.width_us} AS bucket"
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
        start_us = epoch_us(start)
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

    def last_sample_at(self, sandbox_ids: Sequence[str]) -> dict[str, datetime]:
        """Time (UTC) of the newest stored sample of each given sandbox that has any."""
        wanted = set(sandbox_ids)
        found: dict[str, datetime] = {}
        now = datetime.now(UTC)
        with self._reading() as cur:
            for lookback in _LAST_SAMPLE_LOOKBACKS:
                if not wanted:
                    break
                ids = pa.table({"sandbox_id": pa.array(sorted(wanted), pa.string())})
                since = now - lookback if lookback is not None else datetime.min.replace(tzinfo=UTC)
                cur.register("_wanted", ids)
                rows = cur.execute(
                    """SELECT sandbox_id, max(ts) FROM samples
                    WHERE ts >= ? AND sandbox_id IN (SELECT sandbox_id FROM _wanted)
                    GROUP BY sandbox_id""",
                    [since],
                ).fetchall()
                cur.unregister("_wanted")
                for sandbox_id, ts in rows:
                    found[sandbox_id] = utc(ts)
                    wanted.discard(sandbox_id)
        return found
