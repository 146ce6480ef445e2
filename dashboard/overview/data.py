"""The overview page's data: team headline numbers and charts for one time range."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from dashboard.common.charts import MAX_POINTS_PER_SERIES, Limit, Line, time_chart
from dashboard.common.metrics import METRICS, format_value
from dashboard.common.ranges import TimeRange
from storage import MonitorStore

# The team maximum drawn on the running-sandboxes chart: the widest window the API reports.
TEAM_MAX_WINDOW = "7d"


@dataclass(frozen=True)
class OverviewView:
    """Everything the overview shows. `headline` is (label, value, help) per metric card."""

    headline: list[tuple[str, str, str]]
    running_chart: go.Figure
    start_rate_chart: go.Figure
    cpu_chart: go.Figure
    memory_chart: go.Figure
    disk_chart: go.Figure


def load(store: MonitorStore, time_range: TimeRange, concurrency_limit: int | None) -> OverviewView:
    """Read the team's usage over `time_range` and build the overview."""
    usage = store.team_usage(time_range.start, time_range.end, MAX_POINTS_PER_SERIES)
    activity = store.team_activity(time_range.start, time_range.end, MAX_POINTS_PER_SERIES)
    team_max = team_maximum(store.team_peaks(), "concurrent_sandboxes")
    return OverviewView(
        headline=headline(usage, activity, team_max, concurrency_limit),
        running_chart=running_chart(activity, team_max, concurrency_limit),
        start_rate_chart=time_chart(
            activity,
            [Line("sandbox_start_rate", METRICS["start_rate"])],
            title="Sandbox starts per second",
        ),
        cpu_chart=_used_of_allotted(
            usage, "cpu_used_vcpus", "cpu_total_vcpus", "cpu_vcpus", "Team CPU"
        ),
        memory_chart=_used_of_allotted(
            usage, "mem_used_bytes", "mem_total_bytes", "mem_used", "Team memory"
        ),
        disk_chart=_used_of_allotted(
            usage, "disk_used_bytes", "disk_total_bytes", "disk_used", "Team disk"
        ),
    )


def team_maximum(peaks: pd.DataFrame, metric: str) -> float | None:
    """The team's maximum of `metric` over TEAM_MAX_WINDOW as the API reported it last."""
    rows = peaks[(peaks["metric"] == metric) & (peaks["window"] == TEAM_MAX_WINDOW)]
    return None if rows.empty else float(rows["value"].iloc[0])


def running_chart(
    activity: pd.DataFrame, team_max: float | None, concurrency_limit: int | None
) -> go.Figure:
    """Running sandboxes over time, under the concurrency limit, with the team's maximum."""
    limit = None
    if concurrency_limit is not None:
        limit = Limit(float(concurrency_limit), f"limit {concurrency_limit}")
    figure = time_chart(
        activity,
        [Line("concurrent_sandboxes", METRICS["sandboxes"])],
        limit=limit,
        title="Running sandboxes",
    )
    if team_max is not None:
        figure.add_hline(
            y=team_max,
            line_dash="dot",
            line_color=METRICS["sandboxes"].colour,
            annotation_text=f"team maximum (7 d) {team_max:g}",
            annotation_position="bottom right",
        )
    return figure


def headline(
    usage: pd.DataFrame,
    activity: pd.DataFrame,
    team_max: float | None,
    concurrency_limit: int | None,
) -> list[tuple[str, str, str]]:
    """The cards above the charts, from the latest bucket of each frame."""
    running = activity["concurrent_sandboxes"].iloc[-1] if not activity.empty else None
    limit_text = f" of {concurrency_limit}" if concurrency_limit else ""
    cards = [
        (
            "Running",
            f"{format_value(METRICS['sandboxes'], running)}{limit_text}",
            "Sandboxes running in the latest sample; the team's concurrency limit after 'of'.",
        ),
        (
            "Team maximum (7 d)",
            format_value(METRICS["sandboxes"], team_max),
            "Most sandboxes running at once in the last 7 days, as the API reports it.",
        ),
    ]
    latest = usage.iloc[-1] if not usage.empty else None
    for label, used, allotted, metric in (
        ("CPU", "cpu_used_vcpus", "cpu_total_vcpus", "cpu_vcpus"),
        ("Memory", "mem_used_bytes", "mem_total_bytes", "mem_used"),
        ("Disk", "disk_used_bytes", "disk_total_bytes", "disk_used"),
    ):
        value, share = "—", ""
        if latest is not None:
            value = format_value(METRICS[metric], latest[used])
            if latest[allotted]:
                share = f" · {100 * latest[used] / latest[allotted]:.0f} % of allotted"
        help_text = f"Sum over the sandboxes in the latest sample. {METRICS[metric].help}"
        cards.append((label + share, value, help_text))
    return cards


def _used_of_allotted(
    usage: pd.DataFrame, used: str, allotted: str, metric: str, title: str
) -> go.Figure:
    """Team total of a gauge, with the total allotted to the sandboxes as a dashed line."""
    return time_chart(
        usage,
        [
            Line(used, METRICS[metric]),
            Line(allotted, METRICS[metric], name="allotted", dashed=True),
        ],
        title=title,
    )
