"""Templates: every template of the team (the catalog, as last listed), one template's
builds with a build's log live while it runs, and the remedy for its OOMs (a right-sized
template); then how each template (or each value of a metadata key) fits its sandboxes:
memory peaks against the limit, confirmed OOMs per 100 sandboxes, CPU and disk, headroom, a
suggested size with its evidence, then vCPU-hours, GiB-hours and an estimated cost over the
range. Rules: docs/TEMPLATE-FIT.md. Outside text (template names, metadata keys and
values, build logs) is shown as text, never Markdown."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.actions.runner import api_error_words
from dashboard.common import page_support
from dashboard.common.plain_text import literal
from dashboard.common.ranges import TimeRange
from dashboard.serving.runtime import Monitor
from dashboard.templates import data, remedy_plans, remedy_ui
from dashboard.templates.builds import BUILD_COLUMNS, BuildLog, recent_builds, tags_text
from e2bapi.errors import E2BError

NO_PLAN = (
    "No suggested size: none of its sandboxes was sampled in this range, or even "
    "8192 MiB would not hold them."
)
monitor = page_support.monitor_or_stop()
st.title("Templates")
remedy_ui.pending_dialog(monitor)
remedy_ui.started_progress(monitor)
time_range = page_support.range_picker(monitor, "templates", default="24 h")


def template_section(
    monitor: Monitor, catalog: pd.DataFrame, template_id: str, time_range: TimeRange
) -> None:
    """One template: its builds, a build's log, and the remedy."""
    entry = catalog[catalog["template_id"] == template_id].iloc[0].to_dict()
    st.markdown(f"**{literal(data.display_name(entry))}** ({literal(template_id)})")
    if monitor.actions is None:
        st.caption(
            "Builds and their logs are read from the API, which read-only mode does not call."
        )
    else:
        client = monitor.actions.client
        try:
            st.caption(tags_text(client, template_id, literal))
            builds = recent_builds(client, template_id)
        except E2BError as error:
            st.warning(
                f"The template's builds could not be read: {literal(api_error_words(error))}"
            )
            builds = pd.DataFrame(columns=list(BUILD_COLUMNS))
        if builds.empty:
            st.info("No build of this template is listed.")
        else:
            st.dataframe(
                builds,
                hide_index=True,
                key="templates_builds",
                column_config=data.BUILD_COLUMNS,
                column_order=list(data.BUILD_COLUMNS),
            )
            build_id = st.selectbox(
                "Build log", builds["build_id"].tolist(), key=f"templates_build_{template_id}"
            )
            if build_id:
                remedy_ui.build_log_panel(client, BuildLog(template_id, str(build_id)))
    fit = monitor.store.template_fit(time_range.start, time_range.end)
    plan = remedy_plans.plan_for_template(catalog, entry, fit)
    if plan is not None:
        st.caption(f"Suggested: {plan.memory_mb} MiB (see Fit below for its evidence).")
    remedy_ui.remedy_button(monitor, plan, "remedy_template", NO_PLAN)


st.subheader("Catalog")
with page_support.guard("loading the template catalog"):
    catalog = monitor.store.template_catalog()
    if catalog.empty:
        st.info(
            "No template listed yet: the collectors list the team's templates every "
            "SANDSCOPE_SLOW_INTERVAL_S (60 s by default)."
        )
    else:
        st.dataframe(
            data.catalog_table(catalog, monitor.clock()),
            hide_index=True,
            key="templates_catalog",
            column_config=data.CATALOG_COLUMNS,
            column_order=list(data.CATALOG_COLUMNS),
        )
        names = {
            str(row["template_id"]): data.display_name(row) for row in catalog.to_dict("records")
        }
        chosen = st.selectbox(
            "Open a template",
            list(names),
            index=None,
            format_func=lambda template_id: f"{names[template_id]} ({template_id})",
            key="templates_open",
            placeholder="Its builds, their logs and a right-sized copy",
        )
        if chosen is not None:
            template_section(monitor, catalog, str(chosen), time_range)

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
