"""Sandbox detail: CPU, memory and disk against their limits, lifecycle events and OOM kills
on the timeline, the logs, and a verdict on how it ended. The sandbox is `?id=` in the URL."""

from __future__ import annotations

import streamlit as st

from dashboard.actions import panel as action_panel
from dashboard.common import page_support
from dashboard.common.event_table import EVENT_COLUMNS
from dashboard.common.plain_text import literal
from dashboard.sandbox import data

monitor = page_support.monitor_or_stop()
st.title("Sandbox detail")
action_panel.show_results()
action_panel.pending_confirmation(monitor)
sandbox_id = st.query_params.get("id", "").strip()
if not sandbox_id:
    known = data.known_sandbox_ids(monitor.store)
    if not known:
        st.info("No sandboxes are stored yet: they appear here once the collectors see one.")
        st.stop()
    choice = st.selectbox("Sandbox", known, index=None, placeholder="Choose a sandbox")
    if choice is None:
        st.stop()
    st.query_params["id"] = sandbox_id = choice
record = monitor.store.sandbox_record(sandbox_id)
if record is None:
    st.error(
        f"No sandbox with ID {literal(sandbox_id)} is known to sandscope. It may never have been "
        "seen by the collectors, or its history is past retention."
    )
    st.page_link("sandboxes/page.py", label="Back to the sandboxes", icon=":material/arrow_back:")
    st.stop()

st.subheader(data.title(record))
st.caption(data.limits_line(record))
if not record.ended:
    action_panel.action_buttons(monitor, {sandbox_id: record.state}, key="single")
time_range = page_support.range_picker(monitor, "detail", default="15 min")


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_detail() -> None:
    with page_support.guard("loading this sandbox"):
        view = data.load(monitor.store, sandbox_id, time_range, monitor.clock())
        show = {"running": st.info, "paused": st.info}.get(view.verdict.kind, st.warning)
        show(
            f"**{view.verdict.headline}**\n\n" + "\n".join(f"- {e}" for e in view.verdict.evidence)
        )
        st.plotly_chart(view.cpu_chart, key="cpu")
        clicked = st.plotly_chart(
            view.memory_chart, key="memory", on_select="rerun", selection_mode="points"
        )
        st.plotly_chart(view.disk_chart, key="disk")
        at = data.clicked_time(clicked) or data.incident_time(st.query_params)
        st.subheader("Logs")
        logs, caption = data.logs(monitor.store, sandbox_id, time_range, at)
        st.caption(caption)
        if logs.empty:
            st.info("No log lines stored for this sandbox in this range.")
        else:
            st.dataframe(logs, hide_index=True, column_config=data.LOG_COLUMNS)
        st.subheader("Lifecycle events")
        st.dataframe(view.events, hide_index=True, column_config=EVENT_COLUMNS)


live_detail()
