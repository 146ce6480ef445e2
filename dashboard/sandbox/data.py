"""The sandbox detail page's data: its charts with events and OOM kills marked, its logs
(around the time clicked or the incident opened) and the verdict on how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.common.charts import (
    MAX_POINTS_PER_SERIES,
    Limit,
    Line,
    Marker,
    MarkerKind,
    time_chart,
)
from dashboard.common.event_table import events_table
from dashboard.common.metrics import METRICS, format_bytes
from dashboard.common.plain_text import literal, plot_literal
from dashboard.common.ranges import TimeRange, as_utc
from dashboard.incidents.report import parse_incident_key
from dashboard.sandbox.verdict import Verdict, sandbox_verdict
from storage import MonitorStore, SandboxRecord

MIB = 1024**2
LOG_LINES_AROUND = (40, 10)  # lines before and after the chosen time
LOG_COLUMNS = {
    "ts": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
    "level": st.column_config.TextColumn("Level"),
    "message": st.column_config.TextColumn("Message", width="large"),
}
_EVENT_MARKS: dict[str, MarkerKind] = {"killed": "end"}


@dataclass(frozen=True)
class SandboxView:
    """What the page draws; the verdict's texts are Markdown, outside text quoted."""

    verdict: Verdict
    cpu_chart: go.Figure
    memory_chart: go.Figure
    disk_chart: go.Figure
    events: pd.DataFrame


def known_sandbox_ids(store: MonitorStore) -> list[str]:
    """Every stored sandbox, newest first, for the picker."""
    return list(store.sandboxes(include_ended=True)["sandbox_id"])


def title(record: SandboxRecord) -> str:
    """Its ID, template and alias, as Markdown (each shown as the text it is)."""
    alias = f" ({literal(record.alias)})" if record.alias else ""
    return f"{literal(record.sandbox_id)}: {literal(record.template_id)}{alias}"


def limits_line(record: SandboxRecord) -> str:
    """Its limits and times, one line of Markdown (the metadata shown as the text it is)."""
    started = _utc_text(record.started_at)
    return (
        f"{record.cpu_count} vCPU · {record.memory_mb} MiB memory · "
        f"{record.disk_size_mb} MiB disk · started {started} · "
        f"metadata {literal(record.metadata_json)}"
    )


def load(store: MonitorStore, sandbox_id: str, time_range: TimeRange, now: datetime) -> SandboxView:
    """Read the sandbox's series, events and incidents over `time_range` and build the view."""
    record = store.sandbox_record(sandbox_id)
    if record is None:
        raise LookupError(f"sandbox {sandbox_id} is not stored")
    series = store.sandbox_series(
        sandbox_id, time_range.start, time_range.end, MAX_POINTS_PER_SERIES
    )
    first_seen = record.first_seen_at
    # Events may precede the first sighting (created before the collector started).
    all_events = store.events_since(first_seen - timedelta(days=1), sandbox_id)
    incidents = store.sandbox_incidents(sandbox_id)
    markers = _markers(all_events, incidents, time_range)
    mem_limit = float(record.memory_mb) * MIB
    disk_limit = float(record.disk_size_mb) * MIB
    return SandboxView(
        verdict=sandbox_verdict(record, all_events, incidents, now, quote=literal),
        cpu_chart=time_chart(
            series,
            [Line("cpu_used_pct", METRICS["cpu_pct"])],
            limit=Limit(100.0, "all vCPUs"),
            markers=markers,
            title="CPU",
        ),
        memory_chart=time_chart(
            series,
            [
                Line("mem_used_bytes", METRICS["mem_used"], stack=True),
                Line("mem_cache_bytes", METRICS["mem_cache"], stack=True),
            ],
            limit=Limit(mem_limit, f"limit {format_bytes(mem_limit)}"),
            markers=markers,
            title="Memory (click a point to see the logs at that time)",
        ),
        disk_chart=time_chart(
            series,
            [Line("disk_used_bytes", METRICS["disk_used"])],
            limit=Limit(disk_limit, f"size {format_bytes(disk_limit)}"),
            markers=markers,
            title="Disk",
        ),
        events=events_table(all_events[["ts", "type", "kill_reason"]].iloc[::-1]),
    )


def _markers(events: pd.DataFrame, incidents: pd.DataFrame, time_range: TimeRange) -> list[Marker]:
    marks: list[Marker] = []
    for row in events.itertuples():
        kind = _EVENT_MARKS.get(str(row.type).rsplit(".", 1)[-1], "event")
        label = plot_literal(str(row.type).rsplit(".", 1)[-1])
        marks.append(Marker(row.ts.to_pydatetime(), label, kind))
    for row in incidents.itertuples():
        confirmed = row.kind == "oom_confirmed"
        label = "OOM kill" if confirmed else "OOM suspected"
        marks.append(
            Marker(row.occurred_at.to_pydatetime(), label, "oom" if confirmed else "oom_suspected")
        )
    return [m for m in marks if time_range.start <= m.at <= time_range.end]


def clicked_time(event: Any) -> datetime | None:
    """The time of the point clicked on a chart (`st.plotly_chart` selection), UTC."""
    try:
        points = event.selection.points
    except AttributeError:
        return None
    if not points:
        return None
    return as_utc(points[0]["x"])


def incident_time(query_params: Mapping[str, str]) -> datetime | None:
    """The time of the incident the page was opened from (`?at=<incident key>`)."""
    key = query_params.get("at")
    if not key:
        return None
    try:
        return parse_incident_key(key)[1]
    except ValueError:
        return None


def logs(
    store: MonitorStore, sandbox_id: str, time_range: TimeRange, at: datetime | None
) -> tuple[pd.DataFrame, str]:
    """The log lines to show and a caption saying which: around `at` when a time was
    chosen, else the newest in the range."""
    if at is not None:
        before, after = LOG_LINES_AROUND
        frame = store.logs_around(sandbox_id, at, before, after)
        caption = f"Up to {before} lines until {_utc_text(at)} and {after} after it, in order."
        return frame[["ts", "level", "message"]], caption
    frame = store.logs_between(sandbox_id, time_range.start, time_range.end)
    caption = "The newest lines in the range first. Click the memory chart to jump to a time."
    return frame[["ts", "level", "message"]].iloc[::-1], caption


def _utc_text(at: object) -> str:
    stamp = pd.Timestamp(at)
    return "—" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
