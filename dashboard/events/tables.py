"""The Events page's tables: how many rows each shows, and the audit as shown."""

from __future__ import annotations

import pandas as pd
import streamlit as st

# The newest rows the Events page shows: enough to scroll back through a busy hour, few
# enough to send on every 5 s refresh.
EVENTS_SHOWN = 500
# The audit is small and kept forever; the page shows its newest rows.
AUDIT_SHOWN = 500

AUDIT_COLUMNS = {
    "acted_at": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "actor": st.column_config.TextColumn("Who"),
    "action": st.column_config.TextColumn("Action"),
    "sandboxes": st.column_config.TextColumn("Sandboxes"),
    "outcome": st.column_config.TextColumn("Result"),
    "detail": st.column_config.TextColumn("Detail"),
}


def audit_table(actions: pd.DataFrame) -> pd.DataFrame:
    """The audit, newest first, the sandbox IDs as one text column."""
    shown = actions.copy()
    shown["sandboxes"] = shown["sandbox_ids"].map(lambda ids: ", ".join(ids))
    return shown[list(AUDIT_COLUMNS)]
