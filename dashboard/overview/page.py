"""Overview: the team's running sandboxes against its maximum and limit, start rate, and
team totals of CPU, memory and disk against what they were allotted."""

from __future__ import annotations

import streamlit as st

from dashboard.common import page_support
from dashboard.overview import data

monitor = page_support.monitor_or_stop()
st.title("Overview")
# 15 min by default: 5 s buckets, so a fresh monitor shows live lines at once (longer
# ranges show team totals per minute).
time_range = page_support.range_picker(monitor, "overview", default="15 min")


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_overview() -> None:
    with page_support.guard("loading the team's usage"):
        page_support.freshness(monitor)
        view = data.load(monitor.store, time_range, monitor.concurrency_limit)
        for column, (label, value, help_text) in zip(
            st.columns(len(view.headline)), view.headline, strict=True
        ):
            column.metric(label, value, help=help_text)
        left, right = st.columns(2)
        left.plotly_chart(view.running_chart, key="running")
        right.plotly_chart(view.start_rate_chart, key="start_rate")
        cpu, memory, disk = st.columns(3)
        cpu.plotly_chart(view.cpu_chart, key="team_cpu")
        memory.plotly_chart(view.memory_chart, key="team_memory")
        disk.plotly_chart(view.disk_chart, key="team_disk")


live_overview()
