"""Widgets and guards every page shares: the monitor, the login, live refresh, the range
picker and the freshness banner. Streamlit code, kept thin: the rules live in plain modules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from dashboard.common.freshness import freshness_banner
from dashboard.common.plain_text import literal
from dashboard.common.ranges import PRESETS, TimeRange, custom_range, preset_range
from dashboard.serving import runtime
from dashboard.serving.auth import idle_sign_out_text, local_actor, session_expired
from dashboard.serving.runtime import Monitor

_log = logging.getLogger(__name__)
CUSTOM = "Custom"
# When the session last ran the whole page (UTC), and why the login form shows again.
LAST_ACTIVE_KEY = "last_active_at"
EXPIRED_KEY = "signed_out_idle"
# No one's name or password is longer; the browser stops the typing there.
MAX_NAME_CHARS = 128
MAX_PASSWORD_CHARS = 1024


def monitor_or_stop() -> Monitor:
    """The installed monitor, or a clear message (and nothing else) on the page."""
    try:
        return runtime.current()
    except runtime.MonitorNotRunningError as not_running:
        st.error(f"sandscope is not running: {not_running}.")
        st.stop()


def login_gate(monitor: Monitor) -> None:
    """With logins configured, stop here until the visitor has signed in; a session idle
    for longer than the logins allow is signed out first."""
    if not monitor.logins.enabled:
        st.session_state.setdefault("user", local_actor())
        st.session_state.setdefault("role", "operator")
        return
    now = monitor.clock()
    if st.session_state.get("user"):
        if not _idle_too_long(monitor):
            st.session_state[LAST_ACTIVE_KEY] = now
            return
        st.session_state.clear()
        st.session_state[EXPIRED_KEY] = True
    st.title("sandscope")
    if st.session_state.pop(EXPIRED_KEY, False):
        st.info(idle_sign_out_text(monitor.logins.session_idle_s))
    with st.form("login"):
        name = st.text_input("User", max_chars=MAX_NAME_CHARS)
        password = st.text_input("Password", type="password", max_chars=MAX_PASSWORD_CHARS)
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        result = monitor.logins.sign_in(name, password, st.context.ip_address)
        if result.user is None:
            st.error(result.refusal_text(now))
        else:
            st.session_state["user"] = result.user.name
            st.session_state["role"] = result.user.role
            st.session_state[LAST_ACTIVE_KEY] = now
            st.rerun()
    st.stop()


def _idle_too_long(monitor: Monitor) -> bool:
    """True when a signed-in session has been idle longer than its logins allow. Only runs
    of the whole page count as activity: a live fragment's refresh does not."""
    last_active_at = st.session_state.get(LAST_ACTIVE_KEY)
    return session_expired(last_active_at, monitor.clock(), monitor.logins.session_idle_s)


def rerun_if_idle_too_long() -> None:
    """In a live fragment: an expired session reruns the whole page, whose login gate signs
    it out, instead of refreshing data for nobody."""
    try:
        monitor = runtime.current()
    except runtime.MonitorNotRunningError:
        return
    if monitor.logins.enabled and st.session_state.get("user") and _idle_too_long(monitor):
        st.rerun()


def actor() -> str:
    """Who is acting, for the audit table."""
    return str(st.session_state.get("user", local_actor()))


def can_act(monitor: Monitor) -> bool:
    """Actions are shown only when not read-only and to operators whose session is live."""
    if monitor.actions is None or st.session_state.get("role") != "operator":
        return False
    return not (monitor.logins.enabled and _idle_too_long(monitor))


def sidebar(monitor: Monitor) -> None:
    """Where the data comes from, the live switch and who is signed in."""
    with st.sidebar:
        st.caption(monitor.target_description)
        st.toggle(
            "Live refresh",
            value=True,
            key="live",
            help=f"Refresh charts and tables every {monitor.poll_interval_s:g} s.",
        )
        if monitor.actions is None:
            st.caption("Read-only mode: actions are hidden.")
        if monitor.logins.enabled:
            st.caption(f"Signed in as **{actor()}** ({st.session_state.get('role')})")
            if st.button("Sign out"):
                st.session_state.clear()
                st.rerun()


def live_every_s(monitor: Monitor) -> float | None:
    """The fragments' refresh interval: the poll interval while live, else None (paused)."""
    return monitor.poll_interval_s if st.session_state.get("live", True) else None


def range_picker(monitor: Monitor, key: str, default: str = "1 h") -> TimeRange:
    """15 min ... 7 d or a custom UTC range; a bad custom range falls back to the default
    with a message."""
    labels = [*PRESETS, CUSTOM]
    choice = st.segmented_control(
        "Range", labels, default=default, key=f"{key}_range", label_visibility="collapsed"
    )
    now = monitor.clock()
    if choice != CUSTOM:
        return preset_range(str(choice or default), now)
    start_col, end_col = st.columns(2)
    with start_col:
        start_day = st.date_input("From (UTC)", now.date() - timedelta(days=1), key=f"{key}_d0")
        start_time = st.time_input("at", time(0, 0), key=f"{key}_t0")
    with end_col:
        end_day = st.date_input("To (UTC)", now.date(), key=f"{key}_d1")
        end_time = st.time_input("at ", now.time().replace(microsecond=0), key=f"{key}_t1")
    try:
        return custom_range(
            datetime.combine(start_day, start_time, UTC),
            datetime.combine(end_day, end_time, UTC),
            now,
        )
    except ValueError as bad_range:
        st.warning(f"{bad_range}; showing the last {default} instead.")
        return preset_range(default, now)


def freshness(monitor: Monitor) -> None:
    """The banner: how fresh the data is and which collector jobs fail."""
    now = monitor.clock()
    banner = freshness_banner(
        monitor.store.data_freshness(now), now, monitor.poll_interval_s, quote=literal
    )
    if banner.level == "error":
        st.error(banner.text)
    elif banner.level == "warning":
        st.warning(banner.text)
    else:
        st.caption(banner.text)


@contextmanager
def guard(doing: str) -> Iterator[None]:
    """At a page's boundary: an unexpected error becomes a message, never a traceback.
    An idle session's live fragments rerun the page (and its login gate) instead."""
    rerun_if_idle_too_long()
    try:
        yield
    except Exception as failure:  # noqa: BLE001 (the page boundary: show it and log it)
        _log.exception("dashboard failed while %s", doing)
        st.error(f"Something went wrong while {doing}: {literal(str(failure))}")
