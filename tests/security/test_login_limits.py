"""Finding 9 (logins): password guessing was unlimited, and a signed-in session never
expired. Now failed sign-ins earn growing lock-outs per user name and per client address,
and an idle session signs out.

The limiter is checked on its own with a fake clock; then the dashboard's real login page
(Streamlit's AppTest over `dashboard/app.py`, a real store file) is attacked: a guessing
run is locked out (the right password included, with a message saying when to retry), and a
session left idle must sign in again.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.serving import runtime
from dashboard.serving.auth import Logins, User, hash_password
from dashboard.serving.login_limits import (
    FIRST_LOCKOUT_S,
    FORGET_AFTER_S,
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_NAME,
    MAX_LOCKOUT_S,
    MAX_RECORDS,
    LoginLimiter,
)
from storage import MonitorStore

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT_S = 30
PASSWORD = "correct horse battery"


class FakeClock:
    """Monotonic seconds and the matching UTC wall time, moved by hand."""

    def __init__(self) -> None:
        self.s = 1000.0
        self.start = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> float:
        return self.s

    def utc(self) -> datetime:
        return self.start + timedelta(seconds=self.s - 1000.0)

    def advance(self, seconds: float) -> None:
        self.s += seconds


def fail(limiter: LoginLimiter, name: str, address: str | None = "10.0.0.1") -> float:
    """One failed attempt; the lock-out it leaves (s)."""
    assert limiter.begin(name, address) == 0.0
    return limiter.locked_for_s(name, address)


def test_a_few_typos_are_free_then_lockouts_double_up_to_the_cap() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    for _ in range(FREE_FAILURES_PER_NAME):
        assert fail(limiter, "alice") == 0.0
    lockouts = []
    for _ in range(12):
        lockouts.append(fail(limiter, "alice"))
        clock.advance(lockouts[-1])  # wait it out, exactly
    assert lockouts[:4] == [FIRST_LOCKOUT_S * 2**k for k in range(4)]
    assert lockouts[-1] == MAX_LOCKOUT_S
    assert lockouts == sorted(lockouts)


def test_a_locked_name_is_refused_without_counting_and_says_how_long() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    for _ in range(FREE_FAILURES_PER_NAME + 1):
        fail(limiter, "alice")
    assert limiter.begin("alice", "10.0.0.1") == FIRST_LOCKOUT_S
    clock.advance(1.5)
    assert limiter.begin("alice", "10.0.0.2") == pytest.approx(FIRST_LOCKOUT_S - 1.5)
    clock.advance(0.5)
    assert fail(limiter, "alice") == 2 * FIRST_LOCKOUT_S  # refused tries did not count


def test_unknown_and_known_names_are_limited_alike() -> None:
    limiter = LoginLimiter(FakeClock())

    def tries(name: str, subnet: int) -> list[tuple[float, float]]:
        """(refused for, locked for after) of six tries, each from its own address."""
        results = []
        for i in range(6):
            address = f"10.0.{subnet}.{i}"
            results.append((limiter.begin(name, address), limiter.locked_for_s(name, address)))
        return results

    known = tries("alice", 1)
    assert known[-1][0] > 0  # locked out by then
    assert tries("nobody-by-this-name", 2) == known


def test_a_success_clears_the_name_and_gives_the_address_its_attempt_back() -> None:
    limiter = LoginLimiter(FakeClock())
    for _ in range(FREE_FAILURES_PER_NAME):
        fail(limiter, "alice")
    assert limiter.begin("alice", "10.0.0.1") == 0.0
    limiter.succeeded("alice", "10.0.0.1")
    assert fail(limiter, "alice") == 0.0  # counting starts again


def test_one_address_spraying_names_is_locked_out() -> None:
    limiter = LoginLimiter(FakeClock())
    for i in range(FREE_FAILURES_PER_ADDRESS):
        assert fail(limiter, f"user{i}") == 0.0
    assert fail(limiter, "one-more") == FIRST_LOCKOUT_S
    assert limiter.begin("yet-another", "10.0.0.1") > 0  # any name, from that address
    assert limiter.begin("yet-another", "10.0.0.9") == 0.0  # another address is not


def test_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock)
    for _ in range(FREE_FAILURES_PER_NAME + 3):
        clock.advance(limiter.locked_for_s("alice", "10.0.0.1"))
        fail(limiter, "alice")
    clock.advance(FORGET_AFTER_S + 1)
    assert fail(limiter, "alice") == 0.0


def test_the_records_stay_bounded_under_a_spray_of_names() -> None:
    limiter = LoginLimiter(FakeClock())
    for i in range(MAX_RECORDS + 500):
        limiter.begin(f"made-up-{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter._records) <= MAX_RECORDS


# --- the real login page ---------------------------------------------------------------


@dataclass
class Dashboard:
    clock: FakeClock
    logins: Logins


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def dashboard(tmp_path: Path, alice_hash: str) -> Iterator[Dashboard]:
    """The dashboard's runtime with one operator login, a fake clock and an empty store."""
    clock = FakeClock()
    logins = Logins(
        MappingProxyType({"alice": User("alice", "operator", alice_hash)}),
        session_idle_s=600,
        limiter=LoginLimiter(clock),
    )
    store = MonitorStore.open(tmp_path / "monitor.duckdb")
    runtime.install(
        runtime.Monitor(
            store=store,
            actions=None,
            logins=logins,
            poll_interval_s=5,
            target_description="tests",
            clock=clock.utc,
        )
    )
    try:
        yield Dashboard(clock, logins)
    finally:
        runtime.install(None)
        store.close()


def sign_in(app: AppTest, name: str, password: str) -> AppTest:
    app.text_input[0].input(name)
    app.text_input[1].input(password)
    return app.button[0].click().run()


def errors(app: AppTest) -> list[str]:
    return [str(element.value) for element in app.error]


def signed_in(app: AppTest) -> bool:
    return app.session_state["user"] == "alice" if "user" in app.session_state else False


def test_guessing_on_the_login_page_is_locked_out_with_a_time_to_retry(
    dashboard: Dashboard,
) -> None:
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    for _ in range(FREE_FAILURES_PER_NAME):
        assert errors(sign_in(app, "alice", "guess")) == ["Wrong user or password."]
    locked = errors(sign_in(app, "alice", "guess"))
    assert locked == [
        "Wrong user or password. Too many failed sign-ins: try again in 2 s (at 09:00:02 UTC)."
    ]
    # Locked out: even the right password is not looked at.
    assert errors(sign_in(app, "alice", PASSWORD)) == [
        "Too many failed sign-ins: try again in 2 s (at 09:00:02 UTC)."
    ]
    assert not signed_in(app)
    dashboard.clock.advance(FIRST_LOCKOUT_S)
    assert errors(sign_in(app, "alice", PASSWORD)) == []
    assert signed_in(app)


def test_an_idle_session_signs_out_and_says_why(dashboard: Dashboard) -> None:
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    sign_in(app, "alice", PASSWORD)
    assert signed_in(app)
    dashboard.clock.advance(599)
    app.run()
    assert signed_in(app), "active within the idle time"
    dashboard.clock.advance(599)
    app.run()
    assert signed_in(app), "each run of the page is activity"
    dashboard.clock.advance(601)
    app.run()
    assert not signed_in(app)
    assert [str(info.value) for info in app.info] == [
        "You were signed out after 10 min without activity. Sign in again."
    ]
    assert app.text_input[1].label == "Password"


def test_an_unknown_name_costs_the_same_time_as_a_wrong_password(alice_hash: str) -> None:
    """Both run one scrypt check (~50 ms); skipping it for unknown names would make them
    a thousand times faster, far beyond the factor of two allowed for a busy machine."""
    logins = Logins(MappingProxyType({"alice": User("alice", "operator", alice_hash)}))
    logins.check("warm-up", "x")  # builds the decoy hash once

    def median_s(name: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            assert logins.check(name, "wrong") is None
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_s("alice"), median_s("nobody")
    assert known / 2 < unknown < known * 2, (known, unknown)


def live_fragment_script() -> None:
    """A live fragment's body behind the page guard; a rerun of the page is counted, and
    the second run drops the user as the login gate would."""
    import streamlit as st

    from dashboard.common import page_support

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    if st.session_state["runs"] > 1:
        st.session_state.pop("user", None)
    with page_support.guard("refreshing"):
        st.write("fresh data")


@pytest.mark.parametrize(("idle_s", "runs"), [(599, 1), (601, 2)])
def test_a_live_refresh_of_an_idle_session_reruns_the_page_instead(
    dashboard: Dashboard, idle_s: float, runs: int
) -> None:
    app = AppTest.from_function(live_fragment_script, default_timeout=TIMEOUT_S)
    app.session_state["user"] = "alice"
    app.session_state["last_active_at"] = dashboard.clock.utc()
    dashboard.clock.advance(idle_s)
    app.run()
    assert app.session_state["runs"] == runs
    assert [str(text.value) for text in app.markdown] == ["fresh data"]
