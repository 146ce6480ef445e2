"""Events and audit: the team's lifecycle events and every action taken from here."""

from __future__ import annotations

import streamlit as st

from dashboard.common import page_support
from dashboard.common.event_table import EVENT_COLUMNS, events_table
from dashboard.events import tables

monitor = page_support.monitor_or_stop()
st.title("Events and audit")


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_events() -> None:
    with page_support.guard("loading events and the audit"):
        st.subheader("Lifecycle events")
        events = events_table(monitor.store.events_latest(tables.EVENTS_SHOWN))
        if events.empty:
            st.info("No lifecycle events stored yet.")
        else:
            st.dataframe(events, hide_index=True, column_config=EVENT_COLUMNS)
        st.subheader("Actions taken from the dashboard")
        audit = tables.audit_table(monitor.store.actions_latest(tables.AUDIT_SHOWN))
        if audit.empty:
            st.info("No action has been taken from the dashboard yet.")
        else:
            st.dataframe(audit, hide_index=True, column_config=tables.AUDIT_COLUMNS)


live_events()
