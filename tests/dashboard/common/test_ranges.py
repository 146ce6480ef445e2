from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from dashboard.common.ranges import (
    PRESETS,
    TimeRange,
    as_utc,
    custom_range,
    preset_range,
    utc_text,
)

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_presets_are_offered_in_order() -> None:
    assert list(PRESETS) == ["15 min", "1 h", "6 h", "24 h", "7 d"]


@pytest.mark.parametrize(
    ("label", "span"),
    [("15 min", timedelta(minutes=15)), ("1 h", timedelta(hours=1)), ("7 d", timedelta(days=7))],
)
def test_preset_range_ends_now(label: str, span: timedelta) -> None:
    picked = preset_range(label, NOW)
    assert picked == TimeRange(NOW - span, NOW)
    assert picked.duration_s == span.total_seconds()


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'2 h'.*15 min, 1 h, 6 h, 24 h, 7 d"):
        preset_range("2 h", NOW)


def test_custom_range_takes_naive_times_as_utc_and_converts_others() -> None:
    paris = timezone(timedelta(hours=2))
    picked = custom_range(
        datetime(2025, 5, 1, 9, 0), datetime(2025, 5, 1, 12, 30, tzinfo=paris), NOW
    )
    assert picked.start == datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    assert picked.end == datetime(2025, 5, 1, 10, 30, tzinfo=UTC)
    assert picked.start.tzinfo is UTC


def test_custom_range_clips_its_end_to_now() -> None:
    picked = custom_range(NOW - timedelta(hours=1), NOW + timedelta(days=2), NOW)
    assert picked.end == NOW
    assert picked.duration_s == 3600


@pytest.mark.parametrize("end_offset", [timedelta(0), timedelta(minutes=-5)])
def test_custom_range_refuses_start_at_or_after_end(end_offset: timedelta) -> None:
    start = NOW - timedelta(hours=1)
    with pytest.raises(
        ValueError, match="must start before it ends: start 2025-05-01 11:00:00 UTC"
    ):
        custom_range(start, start + end_offset, NOW)


def test_custom_range_refuses_a_range_in_the_future() -> None:
    with pytest.raises(ValueError, match="future"):
        custom_range(NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW)


def test_custom_range_refuses_too_long_a_range() -> None:
    with pytest.raises(ValueError, match=r"91.0 days long; at most 90 days"):
        custom_range(NOW - timedelta(days=91), NOW, NOW)
    assert custom_range(NOW - timedelta(days=3), NOW, NOW, max_days=3).duration_s == 3 * 86400


def test_time_range_refuses_naive_or_empty() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRange(datetime(2025, 5, 1), datetime(2025, 5, 2))
    with pytest.raises(ValueError, match="start before it ends"):
        TimeRange(NOW, NOW)


def test_as_utc_accepts_what_the_store_gives() -> None:
    ts = pd.Timestamp("2025-05-01 12:03:05", tz="UTC")
    assert as_utc(ts) == datetime(2025, 5, 1, 12, 3, 5, tzinfo=UTC)
    assert type(as_utc(ts)) is datetime
    assert as_utc(datetime(2025, 5, 1, 12)) == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert as_utc("2025-05-01T14:00:00+02:00") == datetime(2025, 5, 1, 12, tzinfo=UTC)
    for missing in (None, pd.NaT, float("nan"), "not a time", 3):
        assert as_utc(missing) is None


def test_utc_text_shows_the_date_only_for_another_day() -> None:
    at = datetime(2025, 5, 1, 12, 3, 5, tzinfo=UTC)
    assert utc_text(at, NOW) == "12:03:05 UTC"
    assert utc_text(at, NOW + timedelta(days=1)) == "2025-05-01 12:03:05 UTC"
    assert utc_text(at) == "2025-05-01 12:03:05 UTC"
