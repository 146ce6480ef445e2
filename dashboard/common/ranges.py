"""The range picker's rules: presets and custom ranges become a `TimeRange` in UTC.

Also the two small time helpers every page module shares: turning what the store gives
(pandas Timestamps, NaT, naive datetimes) into aware UTC datetimes, and writing a time the
way the dashboard shows it ("12:03:05 UTC").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

PRESETS: Mapping[str, timedelta] = {
    "15 min": timedelta(minutes=15),
    "1 h": timedelta(hours=1),
    "6 h": timedelta(hours=6),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
}


def as_utc(value: object) -> datetime | None:
    """`value` (datetime, pandas Timestamp, ISO text) as an aware UTC datetime; None for
    None, NaT, NaN or anything that is not a time. A naive time is taken to be UTC."""
    if value is None or value is pd.NaT or isinstance(value, bool | int | float):
        return None
    if isinstance(value, datetime) and not isinstance(value, pd.Timestamp):
        stamp = value
    else:
        try:
            converted = pd.Timestamp(value)  # type: ignore[arg-type, unused-ignore]
        except (TypeError, ValueError):
            return None
        if pd.isna(converted):
            return None
        stamp = converted.to_pydatetime()
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def utc_text(at: datetime, now: datetime | None = None) -> str:
    """`at` as "12:03:05 UTC", with its date ("2025-05-01 12:03:05 UTC") unless it falls
    on the same UTC day as `now`."""
    at = at.astimezone(UTC)
    if now is not None and at.date() == now.astimezone(UTC).date():
        return f"{at:%H:%M:%S} UTC"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class TimeRange:
    """[start, end), both aware UTC datetimes, start before end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a time range needs timezone-aware datetimes (UTC)")
        if self.start >= self.end:
            raise ValueError(
                f"the range must start before it ends: start {utc_text(self.start)} "
                f"is not before end {utc_text(self.end)}"
            )

    @property
    def duration_s(self) -> float:
        """The range's length in seconds."""
        return (self.end - self.start).total_seconds()


def preset_range(label: str, now: datetime) -> TimeRange:
    """The preset `label` ("15 min", "1 h", "6 h", "24 h", "7 d") ending at `now` (UTC; a
    naive `now` is taken as UTC). ValueError naming the presets for any other label."""
    span = PRESETS.get(label)
    if span is None:
        raise ValueError(f"unknown range {label!r}: choose one of {', '.join(PRESETS)}")
    end = _utc(now)
    return TimeRange(end - span, end)


def custom_range(start: datetime, end: datetime, now: datetime, max_days: float = 90) -> TimeRange:
    """A range picked by hand. Naive datetimes are taken as UTC; `end` is clipped to `now`
    (there is no data from the future). ValueError, in words, when the range is empty,
    lies wholly in the future or is longer than `max_days`."""
    start_utc, end_utc, now_utc = _utc(start), _utc(end), _utc(now)
    if start_utc >= end_utc:
        raise ValueError(
            f"the range must start before it ends: start {utc_text(start_utc)} "
            f"is not before end {utc_text(end_utc)}"
        )
    if start_utc >= now_utc:
        raise ValueError(f"the range starts in the future ({utc_text(start_utc)}): no data yet")
    end_utc = min(end_utc, now_utc)
    if end_utc - start_utc > timedelta(days=max_days):
        raise ValueError(
            f"the range is {(end_utc - start_utc).total_seconds() / 86400:.1f} days long; "
            f"at most {max_days:g} days can be shown"
        )
    return TimeRange(start_utc, end_utc)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
