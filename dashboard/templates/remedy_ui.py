"""The Streamlit side of the template remedy and of a build's live log, shared by the
incident page and the Templates page: the button, the confirmation dialog, the build's
progress and the line of code that starts sandboxes from the new template.

What is created, and its audit, live in `dashboard.actions.template_remedy`; following a
build's log in `dashboard.templates.builds`. Operators only: nothing here shows in
read-only mode (`page_support.can_act`).
"""

from __future__ import annotations

import streamlit as st

from dashboard.actions.runner import api_error_words
from dashboard.actions.template_remedy import RemedyPlan, TemplateRemedy, start_line
from dashboard.common import page_support
from dashboard.common.plain_text import literal
from dashboard.serving.runtime import Monitor
from dashboard.templates.builds import BuildLog, follow
from e2bapi import E2BClient
from e2bapi.errors import E2BError

BUTTON_LABEL = "Create a right-sized template"
_PENDING = "remedy_pending"
_STARTED = "remedy_started"
# A build's log refreshes this often while it runs (s); a finished one not at all.
BUILD_REFRESH_S = 1.0


def remedy_button(monitor: Monitor, plan: RemedyPlan | None, key: str, why_not: str) -> None:
    """The button opening the confirmation of `plan` (operators only, hidden in read-only
    mode); disabled, with `why_not` beside it, when there is no plan."""
    if not page_support.can_act(monitor):
        return
    if plan is None:
        st.button(BUTTON_LABEL, key=key, disabled=True, help=why_not)
        st.caption(why_not)
        return
    if st.button(BUTTON_LABEL, key=key):
        # Opened by `pending_dialog` at the page's top level, so a live refresh of a
        # fragment never closes it.
        st.session_state[_PENDING] = plan
        st.rerun(scope="app")


def pending_dialog(monitor: Monitor) -> None:
    """Open the confirmation of the remedy chosen, if any (call at the page's top level)."""
    plan = st.session_state.get(_PENDING)
    if plan is not None and page_support.can_act(monitor):
        _confirm(monitor, plan)


def _forget_pending() -> None:
    st.session_state.pop(_PENDING, None)


@st.dialog("Create a right-sized template", on_dismiss=_forget_pending)
def _confirm(monitor: Monitor, plan: RemedyPlan) -> None:
    """Say exactly what will be created; create it only on the Create button."""
    runner = monitor.actions
    if runner is None:  # read-only mode: nothing is ever pending then
        return
    st.markdown(plan.confirmation_with(literal))
    create, cancel = st.columns(2)
    if create.button("Create", type="primary", disabled=plan.name_taken, key="remedy_create"):
        started = TemplateRemedy.of(runner).start(plan, page_support.actor())
        st.session_state[_STARTED] = (plan, started.ok, started.message)
        if started.ok and started.template_id and started.build_id:
            st.session_state[_log_key(started.build_id)] = BuildLog(
                started.template_id, started.build_id
            )
            st.session_state[f"{_STARTED}_build"] = started.build_id
        else:
            st.session_state.pop(f"{_STARTED}_build", None)
        _forget_pending()
        st.rerun()
    if cancel.button("Cancel", key="remedy_cancel"):
        _forget_pending()
        st.rerun()


def started_progress(monitor: Monitor) -> None:
    """The outcome of the remedy started in this session: the error in words, or the
    build's progress and, once ready, the line that starts sandboxes from it."""
    if monitor.actions is None or _STARTED not in st.session_state:
        return
    plan, ok, message = st.session_state[_STARTED]
    if not ok:
        st.error(f"Create a right-sized template: {literal(message)}")
        _dismiss_button()
        return
    st.success(f"Create a right-sized template: {literal(message)}")
    build_id = st.session_state.get(f"{_STARTED}_build")
    if build_id is None:
        return
    log = build_log_panel(monitor.actions.client, st.session_state[_log_key(build_id)])
    if log.status == "ready":
        st.markdown("Start sandboxes from it with:")
        st.code(start_line(plan), language="python")
    if log.finished:
        _dismiss_button()


def _dismiss_button() -> None:
    """Put the outcome of the remedy away (it shows on every page using it until then)."""
    if st.button("Done", key="remedy_done"):
        st.session_state.pop(_STARTED, None)
        st.session_state.pop(f"{_STARTED}_build", None)
        st.rerun()


def _log_key(build_id: str) -> str:
    return f"build_log_{build_id}"


def build_log_panel(client: E2BClient, log: BuildLog) -> BuildLog:
    """A build's status and its newest log lines, as text, refreshed live until the build
    is ready or failed; returns what is known now."""
    state_key = _log_key(log.build_id)
    st.session_state.setdefault(state_key, log)
    known: BuildLog = st.session_state[state_key]
    every = None if known.finished else BUILD_REFRESH_S

    @st.fragment(run_every=every)
    def live_log() -> None:
        before: BuildLog = st.session_state[state_key]
        now = before
        if not before.finished:
            try:
                now = follow(client, before)
            except E2BError as error:
                st.warning(
                    f"The build's status could not be read: {literal(api_error_words(error))}"
                )
            st.session_state[state_key] = now
        _draw_log(now)
        if now.finished and not before.finished:
            st.rerun(scope="app")  # stop refreshing, and show what follows a finished build

    live_log()
    result: BuildLog = st.session_state[state_key]
    return result


def _draw_log(log: BuildLog) -> None:
    status = log.status or "status not known yet"
    words = {
        "building": "building",
        "waiting": "waiting to build",
        "ready": "ready",
        "error": "failed",
    }.get(status, status)
    line = f"Build {literal(log.build_id)} of template {literal(log.template_id)}: **{words}**"
    (st.error if log.status == "error" else st.markdown)(line)
    if log.reason:
        st.caption(f"Reason: {literal(log.reason)}")
    if log.lines_dropped:
        st.caption(f"The last {len(log.lines)} of {log.lines_read} log lines:")
    if log.lines:
        # st.code shows its text as it is: a build step's output is never Markdown here.
        st.code("\n".join(log.lines), language=None)
    elif log.status is not None:
        st.caption("No log lines yet.")
