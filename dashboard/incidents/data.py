"""The OOM incidents page's data: the list, and one incident opened with its memory chart,
the log lines before the kill, its numbers and its export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.common.charts import MAX_POINTS_PER_SERIES, Limit, Line, Marker, time_chart
from dashboard.common.metrics import METRICS, format_bytes
from dashboard.common.plain_text import literal
from dashboard.common.ranges import utc_text
from dashboard.common.values import text_or_none, with_dashes
from dashboard.incidents.report import (
    IncidentReport,
    build_report,
    export_csv_zip,
    export_json,
    incident_key,
    incident_window,
    parse_incident_key,
    summary,
)
from storage import MonitorStore

PERIODS = {"24 h": timedelta(days=1), "7 d": timedelta(days=7), "90 d": timedelta(days=90)}
LOG_LINES_BEFORE = 30
LOG_LINES_AFTER = 5
_KINDS = {"oom_confirmed": "confirmed", "oom_suspected": "suspected"}
LISTING_COLUMNS = {
    "occurred_at": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "kind": st.column_config.TextColumn(
        "Kind",
        help="confirmed: sandboxd's kernel OOM record or a killed event's reason; "
        "suspected: from the metrics",
    ),
    "sandbox_id": st.column_config.TextColumn("Sandbox"),
    "template_id": st.column_config.TextColumn("Template"),
    "process": st.column_config.TextColumn("Process"),
    "memory": st.column_config.TextColumn(
        "Memory / limit",
        help="suspected: the sample near the limit; confirmed: the kill itself says the "
        "limit was reached, unless a sample says more",
    ),
    "evidence": st.column_config.TextColumn("Evidence", width="large"),
}


def listing(store: MonitorStore, now: datetime, period: str) -> pd.DataFrame:
    """Incidents in the last `period` (a PERIODS label), newest first, with a `key` each."""
    incidents = store.incidents_since(now - PERIODS[period]).iloc[::-1].reset_index(drop=True)
    if incidents.empty:
        return incidents.assign(key=pd.Series(dtype=str), memory=pd.Series(dtype=str))
    incidents["kind"] = incidents["kind"].map(lambda kind: _KINDS.get(kind, kind))
    # A kernel record may name a sandbox the collectors never listed (no template), and a
    # suspected incident comes from metrics, which name no process.
    incidents = with_dashes(incidents, ("template_id", "process"))
    incidents["memory"] = [
        memory_cell(row.kind, row.mem_used_bytes, row.mem_total_bytes)
        for row in incidents.itertuples()
    ]
    incidents["key"] = [
        incident_key({"sandbox_id": row.sandbox_id, "occurred_at": row.occurred_at.to_pydatetime()})
        for row in incidents.itertuples()
    ]
    return incidents


def memory_cell(kind: str, used_bytes: float | None, limit_bytes: float | None) -> str:
    """The listing's "used / limit". A confirmed kill read from a log line carries no
    sample, but the kernel kills for memory only at the limit, so it says so."""
    if kind == "confirmed" and pd.isna(used_bytes):
        return f"limit reached / {format_bytes(limit_bytes)}"
    return f"{format_bytes(used_bytes)} / {format_bytes(limit_bytes)}"


@dataclass(frozen=True)
class OpenedIncident:
    """What the page draws. `title` and `summary` are Markdown, outside text quoted."""

    title: str
    summary: str
    report: IncidentReport
    figures: list[tuple[str, str]]  # (label, value) cards
    memory_chart: go.Figure
    logs: pd.DataFrame
    export_json: bytes
    export_csv_zip: bytes
    file_stem: str


def open_incident(store: MonitorStore, key: str) -> OpenedIncident | None:
    """The incident `key` names, with what the page shows; None when it is not stored.
    Raises ValueError for a key that is not an incident key."""
    sandbox_id, at = parse_incident_key(key)
    incidents = store.sandbox_incidents(sandbox_id)
    # The key keeps milliseconds; stored times may have microseconds: compare keys.
    matches = [row for row in incidents.to_dict("records") if incident_key(row) == key]
    if not matches:
        return None
    incident = matches[0]
    start, end = incident_window(at)
    series = store.sandbox_series(sandbox_id, start, end, MAX_POINTS_PER_SERIES)
    report = build_report(incident, series)
    events = store.events_since(start, sandbox_id)
    events = events[events["ts"] <= pd.Timestamp(end)]
    logs = store.logs_around(sandbox_id, at, LOG_LINES_BEFORE, LOG_LINES_AFTER)
    kind = "OOM kill" if report.kind == "oom_confirmed" else "Suspected OOM"
    process = f" of {literal(report.process)}" if report.process else ""
    return OpenedIncident(
        title=f"{kind}{process} in {literal(sandbox_id)} at {utc_text(at)}",
        summary=summary(report, text_or_none(incident.get("evidence")), quote=literal),
        report=report,
        figures=_figures(report),
        memory_chart=_memory_chart(series, report),
        logs=logs[["ts", "level", "message"]],
        export_json=export_json(report, series, events, logs),
        export_csv_zip=export_csv_zip(report, series, events, logs),
        file_stem=f"oom-{sandbox_id}-{at.strftime('%Y%m%dT%H%M%SZ')}",
    )


def _figures(report: IncidentReport) -> list[tuple[str, str]]:
    growth = report.growth_bytes_per_s
    suggested = report.suggested_memory_mb
    return [
        ("Limit", format_bytes(report.limit_bytes)),
        ("Peak", format_bytes(report.peak_bytes)),
        ("Growth before", "—" if growth is None else f"{format_bytes(growth)}/s"),
        ("Suggested memory", "—" if suggested is None else f"{suggested} MiB"),
    ]


def _memory_chart(series: pd.DataFrame, report: IncidentReport) -> go.Figure:
    confirmed = report.kind == "oom_confirmed"
    marker = Marker(report.at, "OOM kill" if confirmed else "OOM suspected", "oom")
    limit = None
    if report.limit_bytes:
        limit = Limit(float(report.limit_bytes), f"limit {format_bytes(report.limit_bytes)}")
    return time_chart(
        series,
        [
            Line("mem_used_bytes", METRICS["mem_used"], stack=True),
            Line("mem_cache_bytes", METRICS["mem_cache"], stack=True),
        ],
        limit=limit,
        markers=[marker],
        title="Memory before and after",
    )
