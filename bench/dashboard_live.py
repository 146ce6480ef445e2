"""Each dashboard page's live refresh, as its `@st.fragment` does it, for the benchmark.

A live call runs the view builders the fragment calls, then what `st.plotly_chart` and
`st.dataframe` do with their argument before it goes to the browser (Streamlit 1.67):
the figure to a dict and JSON; a DataFrame, or a Styler's CSS and display values, to Arrow.
`Parts` splits its time between store calls and that serialisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.io
import plotly.tools
from dashboard_data import Dataset
from streamlit import dataframe_util
from streamlit.elements.lib.pandas_styler_utils import marshall_styler
from streamlit.proto.ArrowData_pb2 import ArrowData

from dashboard.common.event_table import events_table
from dashboard.common.freshness import freshness_banner
from dashboard.common.ranges import preset_range
from dashboard.events import tables as event_tables
from dashboard.incidents import data as incidents_data
from dashboard.overview import data as overview_data
from dashboard.sandbox import data as sandbox_data
from dashboard.sandboxes import table as tables
from dashboard.sandboxes.triage import TriageFilter, apply_filter, triage_table
from storage import MonitorStore

LIVE_REFRESH_MS = 300.0
POLL_INTERVAL_S = 5.0
CONCURRENCY_LIMIT = 1100


@dataclass
class Parts:
    """Seconds of one live refresh spent in store calls and in Streamlit's serialisation."""

    store_s: float = 0.0
    send_s: float = 0.0
    sent_bytes: int = 0


class TimedStore:
    """The store, with the time of every call added to `parts.store_s`."""

    def __init__(self, store: MonitorStore, parts: Parts) -> None:
        self._store, self._parts = store, parts

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._parts.store_s += time.perf_counter() - started

        return timed


def send_chart(figure: Any, parts: Parts) -> None:
    """What `st.plotly_chart` does with a figure: to a dict, then to JSON."""
    started = time.perf_counter()
    as_dict = plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True)
    parts.sent_bytes += len(plotly.io.to_json(as_dict, validate=False))
    parts.send_s += time.perf_counter() - started


def send_table(data: Any, parts: Parts) -> None:
    """What `st.dataframe` does with a DataFrame or Styler (Streamlit 1.67, eager path):
    a Styler's CSS and display values, then the frame as Arrow IPC bytes."""
    started = time.perf_counter()
    proto = ArrowData()
    if dataframe_util.is_pandas_styler(data):
        marshall_styler(proto, data, "bench")
    frame = dataframe_util.convert_anything_to_pandas_df(data, ensure_copy=False)
    proto.data = dataframe_util.convert_pandas_df_to_arrow_bytes(frame)
    parts.sent_bytes += proto.ByteSize()
    parts.send_s += time.perf_counter() - started


# ---- each page's live refresh: the body of its @st.fragment -------------------------------


def live_overview(store: MonitorStore, ds: Dataset, parts: Parts, range_label: str) -> None:
    freshness_banner(store.data_freshness(ds.now), ds.now, POLL_INTERVAL_S)
    view = overview_data.load(store, preset_range(range_label, ds.now), CONCURRENCY_LIMIT)
    for figure in (
        view.running_chart,
        view.start_rate_chart,
        view.cpu_chart,
        view.memory_chart,
        view.disk_chart,
    ):
        send_chart(figure, parts)


def live_sandboxes(store: MonitorStore, ds: Dataset, parts: Parts) -> None:
    table = triage_table(store.triage_rows(ds.now, include_ended=False), ds.now)
    table = apply_filter(table, TriageFilter())
    send_table(tables.triage_display(table), parts)


def live_sandbox(store: MonitorStore, ds: Dataset, parts: Parts, range_label: str) -> None:
    time_range = preset_range(range_label, ds.now)
    view = sandbox_data.load(store, ds.detail_id, time_range, ds.now)
    for figure in (view.cpu_chart, view.memory_chart, view.disk_chart):
        send_chart(figure, parts)
    logs, _ = sandbox_data.logs(store, ds.detail_id, time_range, None)
    send_table(logs, parts)
    send_table(view.events, parts)


def live_incidents(store: MonitorStore, ds: Dataset, parts: Parts) -> None:
    send_table(incidents_data.listing(store, ds.now, "7 d"), parts)


def open_incident(store: MonitorStore, ds: Dataset, parts: Parts) -> None:
    """Not live: the incident opened under the list (`?incident=`), drawn once per run."""
    opened = incidents_data.open_incident(store, ds.incident_key)
    if opened is None:
        raise LookupError(f"incident {ds.incident_key} is not stored")
    send_chart(opened.memory_chart, parts)
    send_table(opened.logs, parts)


def live_events(store: MonitorStore, ds: Dataset, parts: Parts) -> None:
    send_table(events_table(store.events_latest(event_tables.EVENTS_SHOWN)), parts)
    send_table(event_tables.audit_table(store.actions_latest(event_tables.AUDIT_SHOWN)), parts)


LiveCall = Callable[[MonitorStore, Dataset, Parts], None]
# key (for --profile) -> (row name, the live call, its target)
LIVE: dict[str, tuple[str, LiveCall, float | None]] = {
    "overview-1h": (
        "overview, 1 h",
        lambda s, d, p: live_overview(s, d, p, "1 h"),
        LIVE_REFRESH_MS,
    ),
    "overview-7d": (
        "overview, 7 d",
        lambda s, d, p: live_overview(s, d, p, "7 d"),
        LIVE_REFRESH_MS,
    ),
    "sandboxes": ("sandboxes (1,000 rows)", live_sandboxes, LIVE_REFRESH_MS),
    "sandbox-15min": (
        "sandbox detail, 15 min",
        lambda s, d, p: live_sandbox(s, d, p, "15 min"),
        LIVE_REFRESH_MS,
    ),
    "sandbox-7d": (
        "sandbox detail, 7 d",
        lambda s, d, p: live_sandbox(s, d, p, "7 d"),
        LIVE_REFRESH_MS,
    ),
    "incidents": ("incidents list, 7 d", live_incidents, LIVE_REFRESH_MS),
    "incident-open": ("one incident opened (not live)", open_incident, None),
    "events": ("events and audit", live_events, LIVE_REFRESH_MS),
}
