"""OOM incidents: every confirmed (kernel records, killed events) and suspected (metrics)
OOM, newest first; one opens memory before and after, the limit, the growth, the log lines
before the kill, a suggested memory size and an export. The open incident is `?incident=`
in the URL. Outside text (IDs, process names, evidence) is shown as text, never Markdown."""

from __future__ import annotations

import streamlit as st

from dashboard.common import page_support
from dashboard.common.plain_text import literal
from dashboard.incidents import data
from dashboard.sandbox import data as sandbox_data
from dashboard.templates import remedy_plans, remedy_ui

monitor = page_support.monitor_or_stop()
st.title("OOM incidents")
remedy_ui.pending_dialog(monitor)
remedy_ui.started_progress(monitor)
period = st.segmented_control("Since", list(data.PERIODS), default="7 d", key="incidents_period")


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_incidents() -> None:
    with page_support.guard("loading the OOM incidents"):
        now = monitor.clock()
        listing = data.listing(monitor.store, now, str(period or "7 d"))
        if listing.empty:
            st.info(
                "No OOM incident in this period. Confirmed kills come from sandboxd's "
                "kernel records or a killed event's reason; suspected ones from memory "
                "near its limit, then a drop. Words in a log line are never evidence."
            )
            return
        shown_keys = listing["key"].tolist()

        def open_clicked() -> None:
            # Rows move as new incidents arrive: map the click against the rows shown.
            rows = st.session_state["incident_rows"].selection.rows
            if rows:
                st.query_params["incident"] = shown_keys[rows[0]]
                st.session_state["incident_opened"] = True

        st.dataframe(
            listing,
            hide_index=True,
            on_select=open_clicked,
            selection_mode="single-row",
            key="incident_rows",
            column_config=data.LISTING_COLUMNS,
            column_order=list(data.LISTING_COLUMNS),
        )
    if st.session_state.pop("incident_opened", False):
        st.rerun()  # the opened incident is drawn outside this fragment


live_incidents()
key = st.query_params.get("incident")
if key:
    with page_support.guard("opening the incident"):
        opened = data.open_incident(monitor.store, key)
        if opened is None:
            st.error(f"No OOM incident {literal(key)} is stored (it may be past retention).")
        else:
            st.divider()
            st.subheader(opened.title)
            st.markdown(opened.summary)
            for column, (label, value) in zip(
                st.columns(len(opened.figures)), opened.figures, strict=True
            ):
                column.metric(label, value)
            if opened.report.suggested_memory_mb is not None:
                remedy_ui.remedy_button(
                    monitor,
                    remedy_plans.plan_for_incident(monitor.store, opened.report),
                    "remedy_incident",
                    "Its sandbox is no longer stored, so its template is not known.",
                )
            st.plotly_chart(opened.memory_chart, key="incident_memory")
            st.markdown("**Log lines before the kill**")
            if opened.logs.empty:
                st.info("No log lines stored around this incident.")
            else:
                st.dataframe(opened.logs, hide_index=True, column_config=sandbox_data.LOG_COLUMNS)
            st.page_link(
                "sandbox/page.py",
                label=f"Open sandbox {literal(opened.report.sandbox_id)}",
                icon=":material/open_in_new:",
                query_params={"id": opened.report.sandbox_id, "at": key},
            )
            json_col, csv_col = st.columns(2)
            json_col.download_button(
                "Export JSON", opened.export_json, f"{opened.file_stem}.json", "application/json"
            )
            csv_col.download_button(
                "Export CSV (zip)",
                opened.export_csv_zip,
                f"{opened.file_stem}.zip",
                "application/zip",
            )
