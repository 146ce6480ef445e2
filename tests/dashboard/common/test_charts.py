import base64
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dashboard.common import charts
from dashboard.common.charts import (
    MARKER_COLOURS,
    MAX_POINTS_PER_SERIES,
    NO_DATA_TEXT,
    Limit,
    Line,
    Marker,
    find_peak,
    time_chart,
)
from dashboard.common.metrics import METRICS

MiB = 2**20
GiB = 2**30
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CPU = Line("cpu_used_pct", METRICS["cpu_pct"])
MEMORY = [
    Line("mem_used_bytes", METRICS["mem_used"], stack=True),
    Line("mem_cache_bytes", METRICS["mem_cache"], stack=True),
]


def store_frame(offsets_s: Sequence[float], **columns: Sequence[float]) -> pd.DataFrame:
    """A frame shaped like store.sandbox_series: bucket_start as datetime64[us, UTC]."""
    times = pd.Series([T0 + timedelta(seconds=s) for s in offsets_s]).astype("datetime64[us, UTC]")
    return pd.DataFrame({"bucket_start": times, **{k: list(v) for k, v in columns.items()}})


def lines_of(fig: Any) -> list[Any]:
    """The visible line traces (bands of stacked lines excluded)."""
    return [trace for trace in fig.data if trace.fill != "toself"]


def bands_of(fig: Any) -> list[Any]:
    return [trace for trace in fig.data if trace.fill == "toself"]


def texts(fig: Any) -> list[str]:
    return [annotation.text for annotation in fig.layout.annotations]


def points(array: Any) -> list[float | None]:
    """A trace's values as Python floats, None where the line breaks (NaN)."""
    return [None if math.isnan(v) else float(v) for v in array]


def times(array: Any) -> list[datetime]:
    """A trace's times (naive UTC datetime64, as sent) as aware UTC datetimes."""
    return list(pd.to_datetime(np.asarray(array)).tz_localize("UTC").to_pydatetime())


def sent(fig: Any) -> list[dict[str, Any]]:
    """The traces as the browser gets them (JSON), typed arrays decoded to numpy."""
    traces: list[dict[str, Any]] = json.loads(fig.to_json())["data"]
    for trace in traces:
        for key, value in trace.items():
            if isinstance(value, dict) and "bdata" in value:
                trace[key] = np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"])
    return traces


def test_a_hole_in_the_data_breaks_the_line_instead_of_bridging_it() -> None:
    offsets = [0, 5, 10, 15, 60, 65, 70]  # nothing between 15 s and 60 s
    values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    fig = time_chart(store_frame(offsets, cpu_used_pct=values), [CPU])
    (trace,) = lines_of(fig)
    assert trace.connectgaps is False
    assert points(trace.y) == [10.0, 20.0, 30.0, 40.0, None, 50.0, 60.0, 70.0]
    gap_at = times(trace.x)[4]
    assert T0 + timedelta(seconds=15) < gap_at < T0 + timedelta(seconds=60)
    # The JSON Streamlit sends carries the break as a NaN in a float64 typed array, which
    # Plotly.js breaks the line at as it does at null (checked in chromium).
    (json_trace,) = sent(fig)
    assert json_trace["y"].dtype == np.float64
    assert points(json_trace["y"]) == points(trace.y)


def test_rows_one_step_apart_are_not_broken_and_step_s_overrides_the_median() -> None:
    frame = store_frame([0, 10, 20, 30], cpu_used_pct=[1.0, 2.0, 3.0, 4.0])
    assert None not in points(lines_of(time_chart(frame, [CPU]))[0].y)
    # Told the buckets are 4 s wide, 10 s between rows is a hole every time.
    broken = lines_of(time_chart(frame, [CPU], step_s=4))[0].y
    assert points(broken) == [1.0, None, 2.0, None, 3.0, None, 4.0]


def test_stacked_bands_leave_the_hole_empty() -> None:
    offsets = [0, 5, 10, 100, 105]
    frame = store_frame(
        offsets,
        mem_used_bytes=[m * MiB for m in (10, 20, 30, 40, 50)],
        mem_cache_bytes=[5 * MiB] * 5,
    )
    fig = time_chart(frame, MEMORY)
    hole = (T0 + timedelta(seconds=10), T0 + timedelta(seconds=100))
    for band in bands_of(fig):
        assert band.connectgaps is False
        polygons: list[list[datetime]] = [[]]
        for x, y in zip(times(band.x), points(band.y), strict=True):
            polygons[-1].append(x) if y is not None else polygons.append([])
        polygons = [p for p in polygons if p]
        assert len(polygons) == 2
        for polygon in polygons:  # none reaches across the hole
            assert max(polygon) <= hole[0] or min(polygon) >= hole[1]


def test_stacked_lines_sit_on_each_other_but_hover_shows_their_own_value() -> None:
    frame = store_frame(
        [0, 5], mem_used_bytes=[100 * MiB, 110 * MiB], mem_cache_bytes=[20 * MiB, 30 * MiB]
    )
    used, cache = lines_of(time_chart(frame, MEMORY))
    assert points(used.y) == [100.0, 110.0]
    assert points(cache.y) == [120.0, 140.0]
    assert points(cache.customdata) == [20.0, 30.0]
    assert cache.hovertemplate == "Page cache: %{customdata:.1f} MiB<extra></extra>"
    assert used.line.color == METRICS["mem_used"].colour
    assert cache.line.color == METRICS["mem_cache"].colour


def test_bytes_read_in_mib_below_a_gib_and_the_limit_in_the_same_unit() -> None:
    frame = store_frame([0, 5], mem_used_bytes=[60 * MiB, 90 * MiB], mem_cache_bytes=[0, 0])
    fig = time_chart(frame, MEMORY, limit=Limit(128 * MiB, "limit 128 MiB"))
    assert fig.layout.yaxis.title.text == "Memory used, Page cache (MiB)"
    (limit_line,) = fig.layout.shapes
    assert (limit_line.y0, limit_line.y1, limit_line.line.dash) == (128.0, 128.0, "dash")
    assert "limit 128 MiB" in texts(fig)


def test_bytes_read_in_gib_from_a_gib_up() -> None:
    frame = store_frame([0, 5], disk_used_bytes=[1 * GiB, 3 * GiB])
    fig = time_chart(frame, [Line("disk_used_bytes", METRICS["disk_used"])])
    (trace,) = lines_of(fig)
    assert points(trace.y) == [1.0, 3.0]
    assert fig.layout.yaxis.title.text == "Disk used (GiB)"
    assert trace.hovertemplate == "Disk used: %{customdata:.2f} GiB<extra></extra>"


def test_a_limit_above_a_gib_switches_the_axis_to_gib() -> None:
    frame = store_frame([0, 5], mem_used_bytes=[512 * MiB, 512 * MiB])
    line = Line("mem_used_bytes", METRICS["mem_used"])
    fig = time_chart(frame, [line], limit=Limit(2 * GiB, "limit 2 GiB"))
    assert points(lines_of(fig)[0].y) == [0.5, 0.5]
    assert fig.layout.shapes[0].y0 == 2.0


def test_peak_of_the_first_line_is_annotated_with_value_unit_and_time() -> None:
    frame = store_frame(
        [0, 185, 190],
        mem_used_bytes=[100 * MiB, 121 * MiB, 90 * MiB],
        mem_cache_bytes=[900 * MiB] * 3,  # larger, but not the first line
    )
    fig = time_chart(frame, MEMORY)
    (peak,) = [a for a in fig.layout.annotations if a.text.startswith("peak")]
    assert peak.text == "peak 121 MiB at 12:03:05"
    assert peak.x == T0 + timedelta(seconds=185)
    assert peak.y == 121.0
    assert not any(
        a.text.startswith("peak")
        for a in time_chart(frame, MEMORY, annotate_peak=False).layout.annotations
    )


def test_peak_names_the_date_when_the_range_spans_days() -> None:
    frame = store_frame([0, 2 * 86400], cpu_used_pct=[99.5, 10.0])
    assert "peak 99.5 % at 2024-05-01 12:00:00" in texts(time_chart(frame, [CPU]))


def test_more_rows_than_the_cap_are_rebucketed_by_max_and_a_spike_survives() -> None:
    rows = 3 * MAX_POINTS_PER_SERIES + 17
    values = [20.0] * rows
    values[4321] = 97.0
    fig = time_chart(store_frame([5 * i for i in range(rows)], cpu_used_pct=values), [CPU])
    (trace,) = lines_of(fig)
    assert len(trace.x) <= MAX_POINTS_PER_SERIES
    assert None not in points(trace.y)  # thinning alone makes no hole
    peaks = {p for p in points(trace.y) if p is not None}
    assert sorted(peaks) == [20.0, 97.0]  # maxima: no averaged 20.x value
    assert times(trace.x) == sorted(times(trace.x))
    assert "peak 97.0 % at 18:00:05" in texts(fig)


def test_the_cap_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts, "MAX_POINTS_PER_SERIES", 10)
    frame = store_frame(range(0, 500, 5), cpu_used_pct=[float(i) for i in range(100)])
    (trace,) = lines_of(time_chart(frame, [CPU]))
    assert len(trace.x) <= 10
    assert max(trace.y) == 99.0


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(),
        store_frame([], cpu_used_pct=[]),
        store_frame([0, 5], cpu_used_pct=[float("nan"), float("nan")]),
    ],
    ids=["no columns", "no rows", "only missing values"],
)
def test_no_data_gives_a_figure_that_says_so(frame: pd.DataFrame) -> None:
    fig = time_chart(frame, [CPU], limit=Limit(90, "90 %"), title="CPU")
    assert len(fig.data) == 0
    assert texts(fig) == [NO_DATA_TEXT]
    assert fig.layout.xaxis.title.text == "time (UTC)"


def test_pct_axis_runs_from_zero_to_at_least_100() -> None:
    low = time_chart(store_frame([0, 5], cpu_used_pct=[5.0, 12.5]), [CPU])
    assert tuple(low.layout.yaxis.range) == (0, 100.0)
    assert low.layout.yaxis.title.text == "CPU (%)"
    high = time_chart(store_frame([0, 5], cpu_used_pct=[5.0, 180.0]), [CPU])
    assert tuple(high.layout.yaxis.range) == (0, 180.0)


def test_hover_shows_exact_values_with_unit_and_the_time_in_utc() -> None:
    fig = time_chart(store_frame([0, 5], cpu_used_pct=[87.46, 3.0]), [CPU])
    (trace,) = lines_of(fig)
    assert trace.hovertemplate == "CPU: %{customdata:.1f} %<extra></extra>"
    assert points(trace.customdata) == [87.46, 3.0]
    assert fig.layout.xaxis.hoverformat == "%Y-%m-%d %H:%M:%S UTC"


def test_counts_have_no_unit_suffix() -> None:
    frame = store_frame([0, 5], sandboxes=[3, 4])
    line = Line("sandboxes", METRICS["sandboxes"], name="running")
    fig = time_chart(frame, [line])
    assert fig.layout.yaxis.title.text == "Running sandboxes"
    assert lines_of(fig)[0].hovertemplate == "running: %{customdata:,.0f}<extra></extra>"


def test_markers_are_dashed_vertical_lines_with_their_label_and_kind_colour() -> None:
    frame = store_frame([0, 5, 10], cpu_used_pct=[1.0, 2.0, 3.0])
    oom_at = T0 + timedelta(seconds=8)
    fig = time_chart(
        frame,
        [CPU],
        markers=[Marker(oom_at, "OOM kill", "oom"), Marker(T0, "paused", "event")],
    )
    oom, event = fig.layout.shapes
    assert (oom.x0, oom.x1, oom.yref, oom.y0, oom.y1) == (oom_at, oom_at, "paper", 0, 1)
    assert oom.line.dash == "dash"
    assert oom.line.color == MARKER_COLOURS["oom"] == "#ef4444"
    assert event.line.color == MARKER_COLOURS["event"]
    label = next(a for a in fig.layout.annotations if a.text == "OOM kill")
    assert label.x == oom_at
    assert label.font.color == MARKER_COLOURS["oom"]


def test_times_are_shown_in_utc_whatever_zone_the_frame_uses() -> None:
    paris = pd.Series(pd.to_datetime(["2024-05-01 14:00:00", "2024-05-01 14:00:05"]))
    frame = pd.DataFrame(
        {"bucket_start": paris.dt.tz_localize("Europe/Paris"), "cpu_used_pct": [1.0, 2.0]}
    )
    fig = time_chart(frame, [CPU])
    assert times(lines_of(fig)[0].x)[0] == T0
    assert fig.layout.xaxis.title.text == "time (UTC)"
    assert fig.layout.xaxis.type == "date"
    # Plotly.js draws a date string's wall time as written and epoch numbers in the
    # browser's zone: the browser gets UTC wall time as text.
    assert sent(fig)[0]["x"][:2] == ["2024-05-01T12:00:00.000", "2024-05-01T12:00:05.000"]


def test_rows_out_of_order_are_plotted_in_time_order() -> None:
    fig = time_chart(store_frame([10, 0, 5], cpu_used_pct=[3.0, 1.0, 2.0]), [CPU])
    assert points(lines_of(fig)[0].y) == [1.0, 2.0, 3.0]


def test_a_lone_bucket_between_holes_gets_a_visible_point() -> None:
    offsets = [0, 5, 10, 60, 120, 125]
    fig = time_chart(store_frame(offsets, cpu_used_pct=[1.0] * 6), [CPU])
    (trace,) = lines_of(fig)
    sizes = dict(zip(times(trace.x), trace.marker.size, strict=True))
    assert sizes[T0 + timedelta(seconds=60)] > 0
    assert sizes[T0] == sizes[T0 + timedelta(seconds=5)] == 0


def test_title_height_and_legend() -> None:
    frame = store_frame([0, 5], mem_used_bytes=[1.0, 2.0], mem_cache_bytes=[1.0, 2.0])
    fig = time_chart(frame, MEMORY, title="Memory", height_px=240)
    assert fig.layout.title.text == "Memory"
    assert fig.layout.height == 240
    assert fig.layout.showlegend is True
    assert time_chart(frame, MEMORY[:1]).layout.showlegend is False


def test_bad_line_lists_are_refused() -> None:
    frame = store_frame([0], cpu_used_pct=[1.0], mem_used_bytes=[1.0])
    with pytest.raises(ValueError, match="at least one line"):
        time_chart(frame, [])
    with pytest.raises(ValueError, match="one unit"):
        time_chart(frame, [CPU, MEMORY[0]])
    with pytest.raises(KeyError):
        time_chart(frame, [Line("disk_used_bytes", METRICS["disk_used"])])


def test_find_peak_takes_the_first_of_equal_maxima_and_skips_missing_values() -> None:
    frame = store_frame([0, 5, 10, 15], cpu_used_pct=[float("nan"), 7.0, 9.0, 9.0])
    peak = find_peak(frame, "cpu_used_pct")
    assert peak is not None
    assert (peak.value, peak.at, peak.column) == (9.0, T0 + timedelta(seconds=10), "cpu_used_pct")
    assert peak.at.tzinfo is not None


def test_find_peak_of_nothing_is_none() -> None:
    assert find_peak(store_frame([], cpu_used_pct=[]), "cpu_used_pct") is None
    assert find_peak(store_frame([0], cpu_used_pct=[float("nan")]), "cpu_used_pct") is None


def test_find_peak_takes_naive_times_as_utc() -> None:
    frame = pd.DataFrame({"t": [datetime(2024, 5, 1, 12, 0)], "v": [1.0]})
    peak = find_peak(frame, "v", time_column="t")
    assert peak is not None and peak.at == T0


def test_a_dashed_line_is_drawn_dashed_and_a_plain_one_solid() -> None:
    frame = store_frame([0, 5], mem_used_bytes=[1.0, 2.0], mem_total_bytes=[4.0, 4.0])
    used = Line("mem_used_bytes", METRICS["mem_used"])
    allotted = Line("mem_total_bytes", METRICS["mem_used"], name="allotted", dashed=True)
    plain, dashed = lines_of(time_chart(frame, [used, allotted]))
    assert (plain.line.dash, dashed.line.dash) == ("solid", "dash")
    assert dashed.name == "allotted"


def test_traces_get_numpy_arrays_not_lists() -> None:
    """Lists cost Plotly a check and two deep copies per element and a JSON call per time."""
    offsets = [0, 5, 10, 100, 105]
    frame = store_frame(offsets, mem_used_bytes=[1.0] * 5, mem_cache_bytes=[2.0] * 5)
    fig = time_chart(frame, MEMORY)
    for trace in fig.data:
        assert isinstance(trace.x, np.ndarray) and trace.x.dtype == "datetime64[ms]"
        assert isinstance(trace.y, np.ndarray) and trace.y.dtype == np.float64
    for trace in lines_of(fig):
        assert isinstance(trace.customdata, np.ndarray) and trace.customdata.dtype == np.float64
    for trace in sent(fig):  # values go to the browser as base64 typed arrays
        assert isinstance(trace["y"], np.ndarray)


def test_without_lone_points_no_per_point_marker_sizes_are_sent() -> None:
    fig = time_chart(store_frame([0, 5, 10], cpu_used_pct=[1.0, 2.0, 3.0]), [CPU])
    assert lines_of(fig)[0].marker.size == 0
