"""The one chart helper every page uses: metrics over time, from a store frame to a figure.

Pure: a DataFrame in (one row per time bucket, `bucket_start` UTC), a Plotly figure out.
What it guarantees, whatever the data: missing data shows as a break in the line, never as
an interpolated stretch; a one-bucket spike survives thinning (re-bucketing keeps maxima);
times read in UTC; values read with their unit, in hover text and in the peak annotation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go

from dashboard.common.chart_data import (
    Bands,
    Floats,
    Times,
    axis_times,
    band_outline,
    floats,
    lone_points,
    plot_frame,
    stacked_tops,
    to_utc,
)

# Re-exported: part of this module's API (the frame shaping itself lives in chart_data).
from dashboard.common.chart_data import Peak as Peak
from dashboard.common.chart_data import find_peak as find_peak
from dashboard.common.metrics import Metric, Unit, format_value

MAX_POINTS_PER_SERIES = 2000
NO_DATA_TEXT = "No data in this range"
TIME_AXIS_TITLE = "time (UTC)"
_HOVER_TIME = "%Y-%m-%d %H:%M:%S UTC"
LIMIT_COLOUR = "#9ca3af"

MarkerKind = Literal["oom", "oom_suspected", "event", "end", "selected"]
_MARKER_COLOURS: dict[MarkerKind, str] = {"oom": "#ef4444", "oom_suspected": "#f97316"}
_MARKER_COLOURS |= {"event": "#9ca3af", "end": "#6b7280", "selected": "#eab308"}
MARKER_COLOURS: Mapping[MarkerKind, str] = MappingProxyType(_MARKER_COLOURS)
# Plain dicts, turned into a figure once: each fig.add_shape / add_annotation / update_* runs
# Plotly's validation and update machinery again (about 2 ms apiece).
Props = dict[str, Any]


@dataclass(frozen=True)
class Line:
    """One trace: `column` drawn as `metric`; stacked ones are bands on those before."""

    column: str
    metric: Metric
    name: str | None = None
    stack: bool = False
    dashed: bool = False

    @property
    def legend_name(self) -> str:
        return self.name if self.name is not None else self.metric.label


@dataclass(frozen=True)
class Limit:
    """A dashed horizontal line; `value` in the lines' unit (bytes, %, count ...)."""

    value: float
    label: str


@dataclass(frozen=True)
class Marker:
    """A dashed vertical line at `at` (UTC) with `label` written beside it."""

    at: datetime
    label: str
    kind: MarkerKind


def time_chart(
    frame: pd.DataFrame,
    lines: Sequence[Line],
    *,
    time_column: str = "bucket_start",
    step_s: float | None = None,
    limit: Limit | None = None,
    markers: Sequence[Marker] = (),
    annotate_peak: bool = True,
    title: str | None = None,
    height_px: int = 300,
) -> go.Figure:
    """`lines` of `frame` over time (UTC) as a figure.

    `step_s` is the bucket width in seconds (the median step when None): rows more than two
    steps apart are drawn with a break between them. Bytes read in MiB or GiB, picked from
    the largest value shown. An empty frame gives a figure saying there is no data.
    Raises ValueError when `lines` is empty or mixes units, KeyError for a missing column.
    """
    if not lines:
        raise ValueError("a chart needs at least one line")
    units = {line.metric.unit for line in lines}
    if len(units) > 1:
        raise ValueError(f"the lines of one chart share one unit, got {sorted(units)}")
    layout = _base_layout(title, height_px)
    if frame.empty:
        return _no_data(layout)
    columns = list(dict.fromkeys(line.column for line in lines))
    data = plot_frame(frame, columns, time_column, step_s, MAX_POINTS_PER_SERIES)
    if data[columns].isna().all(axis=None):
        return _no_data(layout)
    traces, scale = _draw(layout, data, lines, limit, axis_times(data[time_column]))
    span = (to_utc(data[time_column].iloc[0]), to_utc(data[time_column].iloc[-1]))
    for marker in markers:
        _add_marker(layout, marker, span)
    peak = find_peak(frame, lines[0].column, time_column) if annotate_peak else None
    if peak is not None:
        _annotate_peak(layout, peak, lines[0].metric, scale, span)
    return go.Figure(data=traces, layout=layout)


def _draw(
    layout: Props,
    data: pd.DataFrame,
    lines: Sequence[Line],
    limit: Limit | None,
    times: Times,
) -> tuple[list[Props], _Scale]:
    """The traces (bands first for stacked lines) and their scale; styles the y axis and
    adds the limit line to `layout`."""
    tops = stacked_tops(data, [(line.column, line.stack) for line in lines])
    largest = _largest(tops, limit)
    scale = _scale(lines[0].metric.unit, largest)
    traces: list[Props] = []
    for line, (bottom, top) in zip(lines, tops, strict=True):
        top_values = floats(top) / scale.divisor
        if bottom is not None:
            traces.append(_band(line, times, floats(bottom) / scale.divisor, top_values))
        own = floats(data[line.column]) / scale.divisor
        traces.append(_trace(line, times, top_values, own, scale))
    _style_y_axis(layout, lines, scale, largest / scale.divisor)
    if limit is not None:
        _add_limit(layout, limit.value / scale.divisor, limit.label)
    return traces, scale


def _largest(tops: Bands, limit: Limit | None) -> float:
    candidates = [float(top.max()) for _, top in tops if top.notna().any()]
    return max([*candidates, *([limit.value] if limit else [])], default=0.0)


@dataclass(frozen=True)
class _Scale:
    """How the lines' unit reads on the y axis and in hover text (a d3 number format)."""

    divisor: float
    axis_unit: str
    hover_format: str


def _scale(unit: Unit, largest: float) -> _Scale:
    if unit == "bytes":
        return _Scale(2**30, "GiB", ".2f") if largest >= 2**30 else _Scale(2**20, "MiB", ".1f")
    table = {"pct": ("%", ".1f"), "vcpus": ("vCPUs", ".2f"), "count": ("", ",.0f")}
    return _Scale(1.0, *table.get(unit, ("/s", ".2f")))


def _marker_sizes(values: Floats) -> object:
    """Marker sizes drawing only points without a neighbour, which no line segment shows
    (one 0 for all when there is none: nothing to send per point)."""
    lone = lone_points(values)
    return (lone * 4).astype("int8") if lone.any() else 0


def _trace(line: Line, times: Times, top: Floats, own: Floats, scale: _Scale) -> Props:
    """The line itself; hover shows the line's own value (not the stacked total)."""
    suffix = f" {scale.axis_unit}" if scale.axis_unit else ""
    colour = line.metric.colour
    return {
        "type": "scatter",
        "x": times,
        "y": top,
        "customdata": own,
        "mode": "lines+markers",
        "marker": {"size": _marker_sizes(top), "color": colour},
        "line": {"color": colour, "width": 1.5, "dash": "dash" if line.dashed else "solid"},
        "hovertemplate": f"{line.legend_name}: %{{customdata:{scale.hover_format}}}{suffix}"
        "<extra></extra>",
        **_common(line),
    }


def _common(line: Line) -> Props:
    """What a line and its band share: one legend entry, and breaks at every hole."""
    return {"name": line.legend_name, "legendgroup": line.legend_name, "connectgaps": False}


def _band(line: Line, times: Times, bottom: Floats, top: Floats) -> Props:
    """The filled band of a stacked line: one closed polygon per run of present values.

    Plotly's own stacking and tozeroy / tonexty fills bridge holes with a straight edge;
    separate closed polygons ("toself"), split by NaN, leave the hole empty.
    """
    xs, ys = band_outline(times, bottom, top)
    # fillcolor defaults to a half-transparent line colour: readable on light and dark.
    return {
        "type": "scatter",
        "x": xs,
        "y": ys,
        "mode": "lines",
        "fill": "toself",
        "line": {"width": 0, "color": line.metric.colour},
        "hoverinfo": "skip",
        "showlegend": False,
        **_common(line),
    }


def _base_layout(title: str | None, height_px: int) -> Props:
    # Transparent, no font colours: Streamlit's theme (light or dark) styles the rest.
    return {
        **({"title": {"text": title}} if title else {}),
        "height": height_px,
        "margin": {"l": 8, "r": 8, "t": 48 if title else 24, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"},
        "xaxis": {"title": {"text": TIME_AXIS_TITLE}, "type": "date", "hoverformat": _HOVER_TIME},
        "yaxis": {},
        "shapes": [],
        "annotations": [],
    }


def _no_data(layout: Props) -> go.Figure:
    middle = {"xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
    layout["annotations"].append({"text": NO_DATA_TEXT, **middle, "showarrow": False})
    layout["xaxis"] |= {"showticklabels": False, "showgrid": False}
    layout["yaxis"] |= {"showticklabels": False, "showgrid": False, "zeroline": False}
    return go.Figure(layout=layout)


def _style_y_axis(layout: Props, lines: Sequence[Line], scale: _Scale, largest: float) -> None:
    labels = ", ".join(dict.fromkeys(line.metric.label for line in lines))
    title = f"{labels} ({scale.axis_unit})" if scale.axis_unit else labels
    layout["yaxis"] |= {"title": {"text": title}, "rangemode": "tozero"}
    if lines[0].metric.unit == "pct":
        layout["yaxis"]["range"] = [0, max(100.0, largest)]
    layout["showlegend"] = len(lines) > 1


def _add_limit(layout: Props, y: float, label: str) -> None:
    """A dashed line across the plot at `y` with `label` above its left end (what
    fig.add_hline(annotation_position="top left") draws)."""
    line = {"dash": "dash", "color": LIMIT_COLOUR, "width": 1}
    across = {"xref": "x domain", "yref": "y", "x0": 0, "x1": 1, "y0": y, "y1": y}
    layout["shapes"].append({"type": "line", **across, "line": line})
    left_end = {"xref": "x domain", "yref": "y", "x": 0, "y": y}
    above = {"xanchor": "left", "yanchor": "bottom", "showarrow": False}
    layout["annotations"].append({"text": label, **left_end, **above})


def _text_anchor(at: datetime, span: tuple[datetime, datetime]) -> Literal["left", "right"]:
    """Text beside a time in the right half of the chart ends there ("right"), so it stays
    inside the plot."""
    return "right" if at > span[0] + (span[1] - span[0]) / 2 else "left"


def _add_marker(layout: Props, marker: Marker, span: tuple[datetime, datetime]) -> None:
    # Labels sit at the bottom: the peak annotation, often at the same time, is at the top.
    at, colour = to_utc(marker.at), MARKER_COLOURS[marker.kind]
    line = {"color": colour, "dash": "dash", "width": 1.5}
    upright = {"xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1}
    layout["shapes"].append({"type": "line", **upright, "line": line})
    layout["annotations"].append(
        {
            "x": at,
            "y": 0,
            "yref": "paper",
            "text": marker.label,
            "hovertext": f"{marker.label} at {at:%Y-%m-%d %H:%M:%S} UTC",
            "showarrow": False,
            "xanchor": _text_anchor(at, span),
            "yanchor": "bottom",
            "font": {"color": colour},
        }
    )


def _annotate_peak(
    layout: Props, peak: Peak, metric: Metric, scale: _Scale, span: tuple[datetime, datetime]
) -> None:
    # Past a day the clock time alone is ambiguous.
    with_date = (span[1] - span[0]).total_seconds() > 86400
    when = f"{peak.at:%Y-%m-%d %H:%M:%S}" if with_date else f"{peak.at:%H:%M:%S}"
    anchor = _text_anchor(peak.at, span)
    layout["annotations"].append(
        {
            "x": peak.at,
            "y": peak.value / scale.divisor,
            "text": f"peak {format_value(metric, peak.value)} at {when}",
            "showarrow": True,
            "arrowhead": 2,
            "ax": -24 if anchor == "right" else 24,
            "ay": -16,
            "xanchor": anchor,
            "font": {"color": metric.colour},
        }
    )
