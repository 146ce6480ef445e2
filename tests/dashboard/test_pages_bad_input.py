"""Pages on an empty store and on a store whose collector fails: a clear message each,
never a traceback. These need no sandboxd: the store is a fresh DuckDB file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.serving import runtime
from dashboard.serving.auth import Logins, User, hash_password
from storage import MonitorStore
from storage.rows import CollectorRun

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ["overview", "sandboxes", "sandbox", "incidents", "templates", "events"]


@pytest.fixture
def empty_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    store = MonitorStore.open(tmp_path / "empty.duckdb")
    monitor = runtime.Monitor(
        store=store,
        actions=None,
        logins=Logins(users={}),
        poll_interval_s=5.0,
        target_description="nothing (tests)",
    )
    runtime.install(monitor)
    yield monitor
    runtime.install(None)
    store.close()


def run_page(page: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    for name, value in query.items():
        app.query_params[name] = value
    app.run()
    if page != "overview":
        app.switch_page(f"{page}/page.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def messages(app: AppTest) -> str:
    return "\n".join(
        str(e.value) for kind in ("info", "warning", "error", "caption") for e in app.get(kind)
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_an_empty_store_explains_itself(
    empty_monitor: runtime.Monitor, page: str
) -> None:
    app = run_page(page)
    assert messages(app), f"{page} shows no message on an empty store"


def test_the_overview_banner_says_no_data_yet(empty_monitor: runtime.Monitor) -> None:
    assert "No data yet" in messages(run_page("overview"))


def test_the_banner_names_a_failing_job_and_its_error(empty_monitor: runtime.Monitor) -> None:
    now = datetime.now(UTC)
    for seconds_ago in (30, 20, 10):
        at = now - timedelta(seconds=seconds_ago)
        empty_monitor.store.record_run(
            CollectorRun(
                "poll",
                at,
                at + timedelta(seconds=1),
                0,
                "GET /v2/sandboxes: no answer from the API (connection refused)",
                None,
            )
        )
    text = messages(run_page("overview"))
    assert "poll" in text and "connection refused" in text


def test_with_logins_every_page_waits_for_a_sign_in(empty_monitor: runtime.Monitor) -> None:
    alice = User(name="alice", role="viewer", password_hash=hash_password("s3cret-enough"))
    runtime.install(dataclasses.replace(empty_monitor, logins=Logins(users={"alice": alice})))
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception
    assert [button.label for button in app.button] == ["Sign in"]  # and nothing else
    assert not app.get("plotly_chart")

    app.text_input[0].input("alice")
    app.text_input[1].input("wrong")
    app.button[0].click().run()
    assert "Wrong user or password." in messages(app)
    assert not app.get("plotly_chart")

    app.text_input[1].input("s3cret-enough")
    app.button[0].click().run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 5  # the overview
    assert "Signed in as **alice** (viewer)" in messages(app)
