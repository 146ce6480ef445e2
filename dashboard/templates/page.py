"""Templates: how each template (or each value of a metadata key) fits its sandboxes:
memory peaks against the limit, confirmed OOMs per 100 sandboxes, CPU and disk, headroom, a
suggested size with its evidence, then vCPU-hours, GiB-hours and an estimated cost over the
range. Only templates with sandboxes in the range appear. Rules: docs/TEMPLATE-FIT.md.
Outside text (template names, metadata keys and values) is shown as text in tables."""

from __future__ import annotations

import streamlit as st

from dashboard.common import page_support
from dashboard.templates import data

monitor = page_support.monitor_or_stop()
st.title("Templates")
time_range = page_support.range_picker(monitor, "templates", default="24 h")
choices = data.grouping_choices(monitor.store, time_range)
choice = st.selectbox(
    "Group by",
    choices,
    key="templates_group",
    help="The template, or the value of a metadata key the sandboxes were started with",
)


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_templates() -> None:
    with page_support.guard("loading the template fit"):
        page_support.freshness(monitor)
        grouping = str(choice or data.BY_TEMPLATE)
        fit = data.fit_table(monitor.store, time_range, grouping)
        st.subheader("Fit")
        if fit.empty:
            st.info("No sandbox started in this range.")
        else:
            st.dataframe(
                fit,
                hide_index=True,
                key="templates_fit",
                column_config=data.FIT_COLUMNS,
                column_order=list(data.FIT_COLUMNS),
            )
            if (cut_off := data.cut_off_text(len(fit))) is not None:
                st.caption(cut_off)
        st.subheader("Usage and cost")
        rates = monitor.cost_rates
        usage = data.usage_table(monitor.store, time_range, grouping, rates)
        if usage.empty:
            st.info("No sandbox was alive in this range.")
            return
        shown = data.USAGE_COLUMNS if rates is not None else data.USAGE_WITHOUT_COST
        st.dataframe(
            usage,
            hide_index=True,
            key="templates_usage",
            column_config=shown,
            column_order=list(shown),
        )
        if rates is None:
            st.caption("No cost rates set: usage only.")


live_templates()
