"""How a range becomes at most N buckets, and from which table they are read.

Pure functions (no SQL), shared by the series questions. A bucket keeps the maximum of each
gauge in it, so a single spike survives any zoom level. Bucket i covers
[origin + i*width, origin + (i+1)*width); the range itself is [start, end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
# A range longer than this reads the per-minute rollup once buckets are a minute or wider.
LONG_RANGE = timedelta(hours=6)
# Team totals add every sandbox's sample in a bucket, so a bucket must hold one sample of
# each (they come every 5 s at most). Past 15 minutes team totals come in whole minutes from
# the team rollup: adding up raw samples per sandbox and bucket cost 130 ms for an hour of
# 1,000 sandboxes, too slow for a refresh every 5 s (bench/README.md).
TEAM_MIN_WIDTH_S = 5
TEAM_RAW_MAX_RANGE = timedelta(minutes=15)


@dataclass(frozen=True)
class Plan:
    """Buckets of `width_s` seconds starting at `origin` (UTC). With `rollup_until` set,
    minutes before it come from the rollup and the rest from raw samples."""

    origin: datetime
    width_s: int
    rollup_until: datetime | None

    @property
    def width_us(self) -> int:
        return self.width_s * 1_000_000


def floor_minute(value: datetime) -> datetime:
    """`value` truncated to its minute (aware datetimes stay aware)."""
    return value.replace(second=0, microsecond=0)


def _width_s(span: timedelta, max_points: int) -> int:
    return max(1, math.ceil(span.total_seconds() / max_points))


def _check(start: datetime, end: datetime, max_points: int) -> None:
    if end <= start:
        raise ValueError(f"empty range: start {start} is not before end {end}")
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")


def _rollup_plan(start: datetime, end: datetime, max_points: int, done: datetime) -> Plan:
    # Minute-aligned buckets of whole minutes, so no minute straddles two buckets.
    origin = floor_minute(start)
    minutes = math.ceil(_width_s(end - origin, max_points) / 60)
    return Plan(origin, minutes * 60, min(done, end))


def sandbox_plan(
    start: datetime,
    end: datetime,
    max_points: int,
    *,
    raw_kept_from: datetime | None,
    rollup_done_until: datetime | None,
) -> Plan:
    """One sandbox's series: raw buckets of ceil(range / max_points) seconds, unless those are
    a minute or wider and the range is long or reaches back past the raw samples kept."""
    _check(start, end, max_points)
    width = _width_s(end - start, max_points)
    before_raw = raw_kept_from is not None and start < raw_kept_from
    long_or_old = end - start > LONG_RANGE or before_raw
    if rollup_done_until is not None and rollup_done_until > start and width >= 60 and long_or_old:
        return _rollup_plan(start, end, max_points, rollup_done_until)
    return Plan(start, width, None)


def team_plan(
    start: datetime,
    end: datetime,
    max_points: int,
    *,
    raw_kept_from: datetime | None,
    rollup_done_until: datetime | None,
) -> Plan:
    """Team totals: raw buckets (at least `TEAM_MIN_WIDTH_S` wide) for ranges up to
    `TEAM_RAW_MAX_RANGE` within the raw samples kept, else buckets of whole minutes from the
    team rollup (fewer points than `max_points` when minutes are finer than needed)."""
    _check(start, end, max_points)
    before_raw = raw_kept_from is not None and start < raw_kept_from
    if end - start <= TEAM_RAW_MAX_RANGE and not before_raw:
        return Plan(start, max(TEAM_MIN_WIDTH_S, _width_s(end - start, max_points)), None)
    if rollup_done_until is None or rollup_done_until <= start:
        # Nothing rolled up yet in range: per-minute buckets straight from raw samples.
        origin = floor_minute(start)
        minutes = math.ceil(_width_s(end - origin, max_points) / 60)
        return Plan(origin, minutes * 60, origin)
    return _rollup_plan(start, end, max_points, rollup_done_until)
