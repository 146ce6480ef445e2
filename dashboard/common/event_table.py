"""Lifecycle events as a table, the same on the Events page and on a sandbox's detail page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common.values import with_dashes

EVENT_COLUMNS = {
    "ts": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "sandbox_id": st.column_config.TextColumn("Sandbox"),
    "type": st.column_config.TextColumn("Event"),
    "kill_reason": st.column_config.TextColumn("Kill reason"),
}


def events_table(events: pd.DataFrame) -> pd.DataFrame:
    """The `EVENT_COLUMNS` that `events` has, in its row order, without the raw JSON; "—" as
    the kill reason of an event that is no kill (a kill without one reads "killed":
    `collectors.parse`)."""
    shown = events[[column for column in EVENT_COLUMNS if column in events.columns]]
    return with_dashes(shown, ("kill_reason",))
