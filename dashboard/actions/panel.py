"""The actions' Streamlit side: a table whose selection is pinned by sandbox ID, the action
buttons, the confirmation dialog and the results. What each action does, and its audit,
live in `dashboard.actions.runner`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import pandas as pd
import streamlit as st

from dashboard.actions.runner import ActionName, required_typed_confirmation
from dashboard.common import page_support
from dashboard.sandboxes import table as tables
from dashboard.serving.runtime import Monitor

_PINNED = "pinned_sandbox_ids"
_RESULTS = "action_results"
_PENDING = "pending_action"
EXTEND_CHOICES_S = {"5 min": 300, "15 min": 900, "30 min": 1800, "1 h": 3600}
# The states each action needs. An ended sandbox (a state of the triage table, not of the
# API) takes none: it is gone already.
_ALLOWED_IN: dict[ActionName, tuple[str, ...]] = {
    "pause": ("running",),
    "resume": ("paused",),
    "extend": ("running",),
    "delete": ("running", "paused"),
}
_LABELS: dict[ActionName, str] = {
    "pause": "Pause",
    "resume": "Resume",
    "extend": "Extend",
    "delete": "Delete",
}


def selectable_table(table: pd.DataFrame, key: str) -> list[str]:
    """Show `table` with row selection and return the selected sandbox IDs.

    Selection is kept as IDs, not row positions: the table refreshes live and its rows move,
    so the positions the user clicked are turned into IDs against the very rows shown, and
    each render selects those IDs wherever they are now (a new widget key when they moved).
    """
    shown_ids = table["sandbox_id"].tolist()
    pinned = [i for i in st.session_state.get(_PINNED, []) if i in shown_ids]
    positions = [shown_ids.index(i) for i in pinned]
    digest = hashlib.sha1(repr(positions).encode()).hexdigest()[:10]
    widget_key = f"{key}_{digest}"

    def pin_selection() -> None:
        rows = st.session_state[widget_key].selection.rows
        st.session_state[_PINNED] = [shown_ids[r] for r in rows if r < len(shown_ids)]

    st.dataframe(
        tables.triage_display(table),
        key=widget_key,
        hide_index=True,
        on_select=pin_selection,
        selection_mode="multi-row",
        selection_default={"selection": {"rows": positions, "columns": []}},
        column_config=tables.TRIAGE_COLUMNS,
        column_order=list(tables.TRIAGE_COLUMNS),
    )
    st.session_state[_PINNED] = pinned
    return pinned


def action_buttons(monitor: Monitor, states_by_id: Mapping[str, str], key: str) -> None:
    """Pause, resume, extend and delete for the sandboxes in `states_by_id` (ID -> state);
    each opens a confirmation.

    An action is on when some of them are in a state that allows it, and then applies to
    those only: the API would answer 409 for the others, so they are left alone, and the
    dialog names them."""
    if not page_support.can_act(monitor):
        return
    for column, action in zip(st.columns(4), _LABELS, strict=True):
        allowed = [i for i, state in states_by_id.items() if state in _ALLOWED_IN[action]]
        left_alone = [(i, state) for i, state in states_by_id.items() if i not in allowed]
        if column.button(
            _LABELS[action],
            key=f"{key}_{action}",
            disabled=not allowed,
            use_container_width=True,
        ):
            # Kept in the session and opened by `pending_confirmation` at the page's top
            # level, so a live refresh of the fragment these buttons sit in never closes it.
            st.session_state[_PENDING] = (action, allowed, left_alone)
            st.rerun(scope="app")


def pending_confirmation(monitor: Monitor) -> None:
    """Open the confirmation dialog of the action chosen, if any (call at the top level)."""
    pending = st.session_state.get(_PENDING)
    if pending is not None and page_support.can_act(monitor):
        action, ids, left_alone = pending
        _confirm(monitor, action, ids, left_alone)


def _forget_pending() -> None:
    st.session_state.pop(_PENDING, None)


@st.dialog("Confirm", on_dismiss=_forget_pending)
def _confirm(
    monitor: Monitor,
    action: ActionName,
    sandbox_ids: list[str],
    left_alone: list[tuple[str, str]],
) -> None:
    """Say exactly what will happen to which sandboxes, and which selected ones it leaves
    alone (ID, state); act only on the action's button."""
    runner = monitor.actions
    if runner is None:  # read-only mode: no action is ever pending then
        return
    extend_by_s = None
    if action == "extend":
        choice = st.segmented_control("Extend by", list(EXTEND_CHOICES_S), default="15 min")
        extend_by_s = EXTEND_CHOICES_S[str(choice or "15 min")]
    st.write(runner.confirmation(action, sandbox_ids, extend_by_s))
    if left_alone:
        named = ", ".join(f"{sandbox_id} ({state})" for sandbox_id, state in left_alone)
        st.caption(f"Left alone, as their state does not allow it: {named}.")
    must_type = required_typed_confirmation(action, len(sandbox_ids))
    typed_ok = True
    if must_type is not None:
        typed = st.text_input(f"Type {must_type} to confirm")
        typed_ok = typed.strip() == must_type
    act, cancel = st.columns(2)
    if act.button(_LABELS[action], type="primary", disabled=not typed_ok, key="confirm_act"):
        results = runner.run(action, sandbox_ids, page_support.actor(), extend_by_s=extend_by_s)
        st.session_state[_RESULTS] = [
            (r.ok, f"{_LABELS[action]} {r.sandbox_id}: {r.message}") for r in results
        ]
        st.session_state[_PINNED] = []
        _forget_pending()
        st.rerun()
    if cancel.button("Cancel", key="confirm_cancel"):
        _forget_pending()
        st.rerun()


def show_results() -> None:
    """The outcome of the last action, once, in words."""
    for ok, message in st.session_state.pop(_RESULTS, []):
        (st.success if ok else st.error)(message)
