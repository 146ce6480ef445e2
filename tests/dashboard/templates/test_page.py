"""The Templates page (Streamlit's AppTest) over a real store file with known samples: the
fit table per template and per metadata value, the suggestion, usage and cost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.serving import runtime
from dashboard.serving.auth import Logins
from dashboard.templates.rates import CostRates
from storage import MonitorStore
from tests.dashboard.templates.known_store import (
    HEADROOM_TEXT,
    P95_TEXT,
    SUGGESTED_TEXT,
    TEMPLATE,
    fill,
)

APP = str(Path(__file__).resolve().parents[3] / "dashboard" / "app.py")


def _install(path: Path, rates: CostRates | None) -> Iterator[runtime.Monitor]:
    store = MonitorStore.open(path)
    monitor = runtime.Monitor(
        store=store,
        actions=None,
        logins=Logins(users={}),
        poll_interval_s=5.0,
        target_description="known samples (tests)",
        cost_rates=rates,
    )
    runtime.install(monitor)
    yield monitor
    runtime.install(None)
    store.close()


@pytest.fixture
def known_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    path = tmp_path / "known.duckdb"
    fill(path, datetime.now(UTC))
    yield from _install(path, CostRates(per_vcpu_hour=1.0, per_gib_hour=2.0))


@pytest.fixture
def empty_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    yield from _install(tmp_path / "empty.duckdb", None)


def open_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    app.switch_page("templates/page.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_fit_table_shows_known_percentiles_and_the_suggestion(
    known_monitor: runtime.Monitor,
) -> None:
    app = open_page()
    fit = app.dataframe[0].value
    row = fit.set_index("group_value").loc[TEMPLATE]
    assert row["sandboxes"] == 5
    assert row["memory"] == "512 MiB"
    assert row["peak_p95"] == P95_TEXT and row["peak_max"] == "500 MiB"
    assert row["headroom"] == HEADROOM_TEXT
    assert row["ooms_per_100"] == "20.0"
    assert row["suggested"] == SUGGESTED_TEXT
    usage = app.dataframe[1].value.set_index("group_value")
    # Five sandboxes of 1 vCPU and 0.5 GiB alive for the last hour of the 24 h range.
    assert usage.loc[TEMPLATE, "vcpu_hours"] == pytest.approx(5.0, rel=1e-3)
    assert usage.loc[TEMPLATE, "gib_hours"] == pytest.approx(2.5, rel=1e-3)
    assert usage.loc[TEMPLATE, "cost"] == pytest.approx(5.0 * 1.0 + 2.5 * 2.0, rel=1e-3)


def test_grouping_by_a_metadata_key(known_monitor: runtime.Monitor) -> None:
    app = open_page()
    group = app.selectbox(key="templates_group")
    assert group.options == ["Template", "agent"]
    group.set_value("agent").run()
    assert not app.exception, [e.value for e in app.exception]
    fit = app.dataframe[0].value.set_index("group_value")
    assert list(fit.index) == ["odd", "even"]  # most sandboxes first
    assert fit.loc["even", "peak_max"] == "400 MiB"
    assert fit.loc["odd", "ooms_per_100"] == "33.3"


def test_an_empty_store_says_so(empty_monitor: runtime.Monitor) -> None:
    app = open_page()
    infos = [str(info.value) for info in app.info]
    assert "No sandbox started in this range." in infos
    assert "No sandbox was alive in this range." in infos
