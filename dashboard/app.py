"""The dashboard's entry script: the login gate, then the pages (`st.navigation`).

Streamlit runs this file on every rerun, in the monitor process (`sandscope run`), which has
installed the store and the actions in `dashboard.serving.runtime` before serving it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.common import page_support

# Each page's script is `<page>/page.py` beside this file. Never a folder named `pages/`:
# Streamlit would serve files there as pages of their own (skipping this script and its
# login gate) until the first run reaches st.navigation. The scripts share a file name, so
# each page names its URL itself.
DASHBOARD_DIR = Path(__file__).parent

st.set_page_config(page_title="sandscope", page_icon="🔭", layout="wide")
monitor = page_support.monitor_or_stop()
page_support.login_gate(monitor)
page_support.sidebar(monitor)
st.navigation(
    [
        st.Page(
            DASHBOARD_DIR / "overview" / "page.py",
            title="Overview",
            icon=":material/dashboard:",
            url_path="overview",
        ),
        st.Page(
            DASHBOARD_DIR / "sandboxes" / "page.py",
            title="Sandboxes",
            icon=":material/table_rows:",
            url_path="sandboxes",
        ),
        st.Page(
            DASHBOARD_DIR / "sandbox" / "page.py",
            title="Sandbox detail",
            icon=":material/memory:",
            url_path="sandbox",
        ),
        st.Page(
            DASHBOARD_DIR / "incidents" / "page.py",
            title="OOM incidents",
            icon=":material/warning:",
            url_path="incidents",
        ),
        st.Page(
            DASHBOARD_DIR / "templates" / "page.py",
            title="Templates",
            icon=":material/deployed_code:",
            url_path="templates",
        ),
        st.Page(
            DASHBOARD_DIR / "events" / "page.py",
            title="Events and audit",
            icon=":material/history:",
            url_path="events",
        ),
    ]
).run()
