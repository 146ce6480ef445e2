"""The dashboard's entry script: the login gate, then the pages (`st.navigation`).

Streamlit runs this file on every rerun, in the monitor process (`sandscope run`), which has
installed the store and the actions in `dashboard.runtime` before serving it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import page_support

# Not `pages/`: Streamlit would serve files there as pages of their own (skipping this
# script and its login gate) until the first run reaches st.navigation.
VIEWS_DIR = Path(__file__).parent / "views"

st.set_page_config(page_title="sandscope", page_icon="🔭", layout="wide")
monitor = page_support.monitor_or_stop()
page_support.login_gate(monitor)
page_support.sidebar(monitor)
st.navigation(
    [
        st.Page(VIEWS_DIR / "overview.py", title="Overview", icon=":material/dashboard:"),
        st.Page(VIEWS_DIR / "sandboxes.py", title="Sandboxes", icon=":material/table_rows:"),
        st.Page(VIEWS_DIR / "sandbox.py", title="Sandbox detail", icon=":material/memory:"),
        st.Page(VIEWS_DIR / "incidents.py", title="OOM incidents", icon=":material/warning:"),
        st.Page(VIEWS_DIR / "events.py", title="Events and audit", icon=":material/history:"),
    ]
).run()
