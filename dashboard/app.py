"""The dashboard's entry script: the login gate, then the pages (`st.navigation`).

Streamlit runs this file on every rerun, in the monitor process (`sandscope run`), which has
installed the store and the actions in `dashboard.runtime` before serving it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import page_support

PAGES_DIR = Path(__file__).parent / "pages"

st.set_page_config(page_title="sandscope", page_icon=":material/monitoring:", layout="wide")
monitor = page_support.monitor_or_stop()
page_support.login_gate(monitor)
page_support.sidebar(monitor)
st.navigation(
    [
        st.Page(PAGES_DIR / "overview.py", title="Overview", icon=":material/dashboard:"),
        st.Page(PAGES_DIR / "sandboxes.py", title="Sandboxes", icon=":material/table_rows:"),
        st.Page(PAGES_DIR / "sandbox.py", title="Sandbox detail", icon=":material/memory:"),
        st.Page(PAGES_DIR / "incidents.py", title="OOM incidents", icon=":material/warning:"),
        st.Page(PAGES_DIR / "events.py", title="Events and audit", icon=":material/history:"),
    ]
).run()
