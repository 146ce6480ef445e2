"""A store frame made ready to plot: UTC times in order, thinned by maxima, holes marked.

Charts draw what comes out of here as it is, so the rules that keep a chart honest live
here: a hole (more than two steps without a row) gets an all-missing row so the line breaks
instead of bridging it, and thinning keeps each bucket's maximum so a one-row spike survives.

Traces get numpy arrays, never Python lists: Plotly checks every element of a list,
deep-copies it twice and JSON-encodes each timestamp on its own (about 300 ms a refresh for
five 2,000-point charts), while float arrays go to the browser as base64 typed arrays and
datetime64 arrays as one vectorised string conversion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]
Times = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class Peak:
    """The largest value of `column` (in its own unit) and the bucket (UTC) it was seen in."""

    value: float
    at: datetime
    column: str


def find_peak(frame: pd.DataFrame, column: str, time_column: str = "bucket_start") -> Peak | None:
    """The largest non-missing value of `column` (the first bucket on a tie), or None when
    the frame is empty or the column holds no value. Raises KeyError for a missing column."""
    if frame.empty:
        return None
    values = pd.to_numeric(frame[column], errors="coerce").reset_index(drop=True)
    if values.notna().sum() == 0:
        return None
    position = int(values.idxmax())
    return Peak(float(values.iloc[position]), to_utc(frame[time_column].iloc[position]), column)


def to_utc(value: object) -> datetime:
    """`value` (datetime, Timestamp, ISO text) as an aware UTC datetime; naive is taken as UTC."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def plot_frame(
    frame: pd.DataFrame,
    columns: list[str],
    time_column: str,
    step_s: float | None,
    max_points: int,
) -> pd.DataFrame:
    """`time_column` (UTC, sorted) and `columns` (float, NaN when missing) of `frame`, thinned
    to `max_points` rows by maxima, with an all-missing row in each hole.

    `step_s` is the bucket width in seconds; None infers it as the median step. Raises
    KeyError for a missing column.
    """
    data = frame[[time_column, *columns]].copy()
    data[time_column] = pd.to_datetime(data[time_column], utc=True)
    for column in columns:
        data[column] = pd.to_numeric(data[column], errors="coerce").astype("float64")
    data = data.dropna(subset=[time_column]).sort_values(time_column, kind="stable")
    data = data.reset_index(drop=True)
    width_s = 0.0
    if len(data) > max_points:
        data, width_s = rebucket_max(data, time_column, max_points)
    if step_s is None:
        steps_s = data[time_column].diff().dt.total_seconds()
        step_s = float(steps_s[steps_s > 0].median()) if (steps_s > 0).any() else 0.0
    return insert_gaps(data, time_column, max(step_s, width_s))


def rebucket_max(
    data: pd.DataFrame, time_column: str, max_points: int
) -> tuple[pd.DataFrame, float]:
    """`data` (time-sorted, UTC) in at most `max_points` equal-width buckets from its first
    row, each holding the maximum of every column (an average would flatten the one-sample
    spike that matters), and the bucket width in seconds."""
    times = data[time_column]
    start = times.iloc[0]
    span_us = (times.iloc[-1] - start) // pd.Timedelta(microseconds=1)
    width_us = span_us // max_points + 1  # keeps the last bucket index below max_points
    bucket = ((times - start) // pd.Timedelta(microseconds=width_us)).to_numpy()
    grouped = data.drop(columns=time_column).groupby(bucket).max()
    offsets = pd.to_timedelta(grouped.index.to_numpy() * width_us, unit="us")
    grouped.insert(0, time_column, start + offsets)
    return grouped.reset_index(drop=True), width_us / 1e6


def insert_gaps(data: pd.DataFrame, time_column: str, step_s: float) -> pd.DataFrame:
    """`data` (time-sorted, UTC, RangeIndex) with an all-missing row `step_s` after every
    row that is followed by a hole: more than two steps without a row."""
    if step_s <= 0 or len(data) < 2:
        return data
    steps_s = data[time_column].diff().dt.total_seconds()
    before_hole = steps_s.index[steps_s > 2 * step_s] - 1
    if len(before_hole) == 0:
        return data
    fillers = pd.DataFrame(
        {time_column: data[time_column].iloc[before_hole] + pd.Timedelta(seconds=step_s)}
    )
    for column in data.columns.drop(time_column):
        fillers[column] = math.nan
    combined = pd.concat([data, fillers.astype(data.dtypes.to_dict())], ignore_index=True)
    return combined.sort_values(time_column, kind="stable").reset_index(drop=True)


Bands = list[tuple[pd.Series | None, pd.Series]]


def stacked_tops(data: pd.DataFrame, columns: Sequence[tuple[str, bool]]) -> Bands:
    """Per (column, stacked) pair, in the column's unit: the bottom of its band (None when
    not stacked) and its top; each stacked column sits on the stacked columns before it."""
    base = pd.Series(0.0, index=data.index)
    result: Bands = []
    for column, stacked in columns:
        if stacked:
            # A missing value anywhere below leaves the band above it missing too.
            result.append((base, base + data[column]))
            base = base + data[column]
        else:
            result.append((None, data[column]))
    return result


def axis_times(times: pd.Series) -> Times:
    """`times` (aware or naive-as-UTC) as naive UTC datetime64[ms] for a date axis.

    Plotly.js draws a date string's wall time as written (it drops any offset) but epoch
    numbers in the browser's own zone, so UTC wall time as datetime64 is what reads as UTC.
    """
    utc = pd.to_datetime(times, utc=True).dt.tz_convert(None)
    result: Times = utc.to_numpy(dtype="datetime64[ms]")
    return result


def floats(values: pd.Series) -> Floats:
    """`values` as float64 with NaN where missing: Plotly breaks a line at NaN as at None."""
    result: Floats = values.to_numpy(dtype="float64", na_value=math.nan)
    return result


def lone_points(values: Floats) -> npt.NDArray[np.bool_]:
    """True where a value has no present neighbour: no line segment draws it."""
    present = np.concatenate(([False], ~np.isnan(values), [False]))
    lone: npt.NDArray[np.bool_] = present[1:-1] & ~present[:-2] & ~present[2:]
    return lone


def band_outline(times: Times, bottom: Floats, top: Floats) -> tuple[Times, Floats]:
    """The outline (x, y) of the band between `bottom` and `top` over `times`: one closed
    polygon per run of rows where both are present (along the top, back along the bottom),
    each ended by a NaN row (at the run's last time) so a hole stays empty."""
    present = ~(np.isnan(bottom) | np.isnan(top))
    edges = np.diff(np.concatenate(([0], present.astype(np.int8), [0])))
    xs: list[Times] = [times[:0]]
    ys: list[Floats] = [top[:0]]
    for first, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        run = slice(first, stop)
        xs += [times[run], times[run][::-1], times[stop - 1 : stop]]
        ys += [top[run], bottom[run][::-1], np.array([math.nan])]
    return np.concatenate(xs), np.concatenate(ys)
