import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from dashboard.common.chart_data import (
    axis_times,
    band_outline,
    floats,
    insert_gaps,
    lone_points,
    plot_frame,
    rebucket_max,
    stacked_tops,
    to_utc,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def frame(offsets_s: list[float], values: list[float]) -> pd.DataFrame:
    times = pd.Series([T0 + timedelta(seconds=s) for s in offsets_s]).astype("datetime64[us, UTC]")
    return pd.DataFrame({"t": times, "v": values})


@pytest.mark.parametrize("rows", [11, 20, 21, 1000, 1001])
def test_rebucket_max_never_exceeds_the_cap_and_keeps_each_bucket_maximum(rows: int) -> None:
    data = frame([5 * i for i in range(rows)], [float(i % 7) for i in range(rows)])
    thinned, width_s = rebucket_max(data, "t", 10)
    assert len(thinned) <= 10
    assert thinned["v"].max() == data["v"].max()
    starts = thinned["t"]
    assert starts.iloc[0] == T0
    assert ((starts.diff().dt.total_seconds().dropna() / width_s) % 1 == 0).all()
    assert width_s * 10 > 5 * (rows - 1)  # the buckets cover the whole range


def test_insert_gaps_adds_one_missing_row_a_step_after_each_hole_start() -> None:
    data = frame([0, 5, 30, 35, 80], [1.0, 2.0, 3.0, 4.0, 5.0])
    filled = insert_gaps(data, "t", 5.0)
    assert [t - T0 for t in filled["t"]] == [
        timedelta(seconds=s) for s in (0, 5, 10, 30, 35, 40, 80)
    ]
    assert [None if math.isnan(v) else v for v in filled["v"]] == [
        1.0, 2.0, None, 3.0, 4.0, None, 5.0,
    ]  # fmt: skip
    assert filled["t"].dtype == data["t"].dtype and filled["v"].dtype == "float64"


def test_exactly_two_steps_apart_is_not_a_hole() -> None:
    data = frame([0, 10], [1.0, 2.0])
    assert len(insert_gaps(data, "t", 5.0)) == 2


def test_plot_frame_infers_the_step_ignoring_duplicate_times() -> None:
    data = frame([0, 0, 0, 0, 5, 10, 40], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    shaped = plot_frame(data, ["v"], "t", None, max_points=100)
    assert shaped["v"].isna().sum() == 1


def test_plot_frame_coerces_values_and_drops_rows_without_a_time() -> None:
    data = pd.DataFrame({"t": [None, "2024-05-01T12:00:00Z"], "v": [1, "junk"]})
    shaped = plot_frame(data, ["v"], "t", None, max_points=100)
    assert list(shaped["t"]) == [T0]
    assert math.isnan(shaped["v"].iloc[0])


def test_stacked_tops_stack_only_stacked_columns_and_keep_missing_values_missing() -> None:
    data = pd.DataFrame({"a": [1.0, math.nan], "b": [10.0, 20.0], "c": [100.0, 200.0]})
    (a_bottom, a_top), (b_bottom, b_top), (c_bottom, c_top) = stacked_tops(
        data, [("a", True), ("b", True), ("c", False)]
    )
    assert a_bottom is not None and list(a_bottom) == [0.0, 0.0]
    assert a_top.tolist()[0] == 1.0 and math.isnan(a_top.tolist()[1])
    assert b_top.tolist()[0] == 11.0 and math.isnan(b_top.tolist()[1])
    assert b_bottom is not None and b_bottom.tolist()[0] == 1.0
    assert c_bottom is None and list(c_top) == [100.0, 200.0]


def test_to_utc_converts_zones_and_takes_naive_as_utc() -> None:
    assert to_utc("2024-05-01T14:00:00+02:00") == T0
    assert to_utc(datetime(2024, 5, 1, 12, 0)) == T0
    assert to_utc(pd.Timestamp(T0)).tzinfo is not None


def test_axis_times_are_naive_utc_wall_times_in_milliseconds() -> None:
    paris = pd.Series(pd.to_datetime(["2024-05-01 14:00:00.123456"])).dt.tz_localize("Europe/Paris")
    assert axis_times(paris).tolist() == [np.datetime64("2024-05-01T12:00:00.123", "ms")]
    naive = pd.Series(pd.to_datetime(["2024-05-01 12:00:00"]))  # taken as UTC
    assert axis_times(naive).dtype == np.dtype("datetime64[ms]")
    assert axis_times(naive)[0] == np.datetime64("2024-05-01T12:00:00")


def test_floats_turn_missing_values_into_nan() -> None:
    result = floats(pd.Series([1, None, 3], dtype="Int64"))
    assert result.dtype == np.float64
    assert result[0] == 1.0 and math.isnan(result[1]) and result[2] == 3.0


def test_lone_points_are_values_without_a_present_neighbour() -> None:
    nan = math.nan
    values = np.array([1.0, nan, 2.0, 3.0, nan, 4.0, nan, nan, 5.0])
    lone = [True, False, False, False, False, True, False, False, True]
    assert lone_points(values).tolist() == lone
    assert lone_points(np.array([], dtype="float64")).tolist() == []


def test_band_outline_is_one_closed_polygon_per_run_ended_by_nan() -> None:
    times = np.arange(5).astype("datetime64[s]").astype("datetime64[ms]")
    bottom = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    top = np.array([10.0, 11.0, math.nan, 13.0, 14.0])
    xs, ys = band_outline(times, bottom, top)
    seconds = xs.astype("datetime64[s]").astype(int).tolist()
    assert seconds == [0, 1, 1, 0, 1, 3, 4, 4, 3, 4]
    assert [None if math.isnan(y) else y for y in ys] == [
        10.0, 11.0, 1.0, 0.0, None, 13.0, 14.0, 4.0, 3.0, None,
    ]  # fmt: skip
    assert xs.dtype == times.dtype and ys.dtype == np.float64


def test_band_outline_of_nothing_present_is_empty() -> None:
    times = np.arange(2).astype("datetime64[ms]")
    xs, ys = band_outline(times, np.zeros(2), np.full(2, math.nan))
    assert len(xs) == len(ys) == 0 and xs.dtype == times.dtype
