"""SQL pieces of the triage table: each sandbox's latest sample, trend slopes and life-long
memory peak, read so that a refresh touches only the row groups it needs.

Pure functions building SQL and parameters; `FleetReads.triage_rows` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from storage.tables import SAMPLE_GAUGE_NAMES

# The latest sample's gauges; not cpu_count, which the sandbox's own row holds.
LATEST_GAUGES = [g for g in SAMPLE_GAUGE_NAMES if g != "cpu_count"]
LATEST_COLUMNS = ["last_sample_at", *LATEST_GAUGES]
MIN_TREND_SAMPLES = 3
# One struct per sandbox instead of an arg_max per column: a single pass picks the row.
_LATEST = (
    "max(ts) AS last_sample_at, arg_max({"
    + ", ".join(f"{g}: {g}" for g in LATEST_GAUGES)
    + "}, ts) AS l"
)
_UNPACK = "sandbox_id, last_sample_at, " + ", ".join(f"l.{g}" for g in LATEST_GAUGES)
# A rolled-up minute's samples lie within it.
_MINUTE = timedelta(minutes=1)
# Time ranges given to one scan (each lets it skip the row groups outside every range).
_MAX_RANGES = 64


def _slope(column: str) -> str:
    # x in seconds relative to `now`: small numbers keep the regression precise.
    return f"""CASE WHEN count(*) FILTER (WHERE ts >= $trend_from) >= {MIN_TREND_SAMPLES}
        THEN regr_slope({column}, (epoch_us(ts) - $now_us) / 1e6)
            FILTER (WHERE ts >= $trend_from) END"""


# Per sandbox sampled since $life_from: the latest sample in [$recent_from, $now] (NULL when
# none), the slopes over [$trend_from, $now], the peak memory over its life (rollup minutes
# before $until, raw samples from $until to $now) and `seen_until`: its last sample time, or
# the start of the rolled-up minute holding it.
STATS_SQL = f"""WITH recent AS (
        SELECT sandbox_id, {_LATEST},
            {_slope("mem_used_bytes")} AS mem_slope_bytes_per_s,
            {_slope("disk_used_bytes")} AS disk_slope_bytes_per_s
        FROM samples WHERE ts >= $recent_from AND ts <= $now GROUP BY sandbox_id),
    life AS (
        SELECT sandbox_id, max(peak) AS peak_mem_used_bytes, max(t) AS seen_until FROM (
            SELECT sandbox_id, mem_used_bytes_max AS peak, minute AS t FROM samples_1m
            WHERE minute >= $life_from AND minute < $until
            UNION ALL
            SELECT sandbox_id, mem_used_bytes, ts FROM samples WHERE ts >= $until AND ts <= $now)
        GROUP BY sandbox_id)
    SELECT {_UNPACK}, peak_mem_used_bytes, mem_slope_bytes_per_s, disk_slope_bytes_per_s,
        seen_until
    FROM life LEFT JOIN recent USING (sandbox_id)"""


def scan_ranges(
    starts: list[datetime], max_ranges: int = _MAX_RANGES
) -> list[tuple[datetime, datetime]]:
    """The minutes [start, start + 1 min) of `starts` as at most `max_ranges` disjoint time
    ranges (lo, hi), oldest first: overlapping ones merged, then those closest together
    until few enough."""
    ranges: list[tuple[datetime, datetime]] = []
    for lo in sorted(set(starts)):
        if ranges and lo <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], lo + _MINUTE)
        else:
            ranges.append((lo, lo + _MINUTE))
    if len(ranges) <= max_ranges:
        return ranges
    # Join the ranges across the smallest gaps, just enough of them (ties broken by time).
    by_gap = sorted(range(len(ranges) - 1), key=lambda j: ranges[j + 1][0] - ranges[j][1])
    joined = set(by_gap[: len(ranges) - max_ranges])
    merged = [ranges[0]]
    for j, (lo, hi) in enumerate(ranges[1:]):
        if j in joined:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def older_latest_query(
    seen_until: Mapping[str, datetime], now: datetime
) -> tuple[str, dict[str, object]]:
    """SQL and parameters reading the latest sample at or before `now` of each sandbox in
    `seen_until`, which maps it to the start of the minute holding that sample (or to the
    sample's time). Columns: sandbox_id, then `LATEST_COLUMNS`.

    One scan, restricted to each sandbox's minute; the constant time ranges let DuckDB skip
    the row groups between those minutes (a scan from the oldest minute would read every
    row group since)."""
    ranges = scan_ranges(list(seen_until.values()))
    params: dict[str, object] = {
        "now": now,
        "ids": list(seen_until),
        "froms": list(seen_until.values()),
    }
    for k, (lo, hi) in enumerate(ranges):
        params.update({f"lo{k}": lo, f"hi{k}": hi})
    in_ranges = " OR ".join(f"(s.ts >= $lo{k} AND s.ts < $hi{k})" for k in range(len(ranges)))
    sql = f"""SELECT {_UNPACK} FROM (
            SELECT sandbox_id, {_LATEST} FROM samples s
            JOIN (SELECT unnest($ids::VARCHAR[]) AS sandbox_id,
                    unnest($froms::TIMESTAMPTZ[]) AS seen_from) w USING (sandbox_id)
            WHERE ({in_ranges}) AND s.ts <= $now
                AND s.ts >= w.seen_from AND s.ts < w.seen_from + INTERVAL 1 MINUTE
            GROUP BY sandbox_id)"""
    return sql, params
