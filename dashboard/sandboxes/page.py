"""Sandboxes (triage): every sandbox with its usage against its limits, the hottest first,
filterable, with bulk pause, resume, extend and delete."""

from __future__ import annotations

import streamlit as st

from dashboard.actions import panel as action_panel
from dashboard.common import page_support
from dashboard.sandboxes import table as tables
from dashboard.sandboxes import triage

monitor = page_support.monitor_or_stop()
st.title("Sandboxes")
action_panel.show_results()
action_panel.pending_confirmation(monitor)
search, states, templates, metadata = st.columns([3, 2, 2, 2])
text = search.text_input("Search", placeholder="id, alias, template or metadata")
chosen_states = states.multiselect("State", ["running", "paused", "ended"], key="triage_states")
chosen_templates = templates.multiselect(
    "Template", tables.known_templates(monitor.store), key="triage_templates"
)
metadata_filter = metadata.text_input("Metadata", placeholder="key=value")
show_ended = "ended" in chosen_states


@st.fragment(run_every=page_support.live_every_s(monitor))
def live_triage() -> None:
    with page_support.guard("loading the sandboxes"):
        now = monitor.clock()
        table = triage.triage_table(monitor.store.triage_rows(now, include_ended=show_ended), now)
        chosen = triage.TriageFilter(
            states=chosen_states, templates=chosen_templates, metadata=metadata_filter, text=text
        )
        table = triage.apply_filter(table, chosen)
        if table.empty:
            st.info(triage.empty_table_text(chosen))
            return
        selected = action_panel.selectable_table(table, key="triage")
        st.caption(
            f"{len(table)} sandboxes, the fullest first (of CPU, memory and disk). "
            "Select rows for bulk actions; open one for its charts and logs."
        )
        if selected:
            st.write(f"Selected: {', '.join(selected)}")
        if len(selected) == 1:
            st.page_link(
                "sandbox/page.py",
                label=f"Open {selected[0]}",
                icon=":material/open_in_new:",
                query_params={"id": selected[0]},
            )
        states = table.set_index("sandbox_id")["state"]
        action_panel.action_buttons(monitor, {i: str(states[i]) for i in selected}, key="bulk")


live_triage()
