"""The Templates page (Streamlit's AppTest) over a real store file with known samples: the
fit table per template and per metadata value, the suggestion, usage and cost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.actions.runner import ActionRunner
from dashboard.actions.template_remedy import AUDIT_ACTION
from dashboard.serving import runtime
from dashboard.serving.auth import Logins
from dashboard.templates.rates import CostRates
from dashboard.templates.remedy_ui import BUTTON_LABEL
from sandscope.clients import open_client
from sandscope.settings import load_settings
from storage import MonitorStore
from tests.dashboard.templates.known_store import (
    HEADROOM_TEXT,
    P95_TEXT,
    SUGGESTED_TEXT,
    TEMPLATE,
    add_catalog,
    catalog_row,
    fill,
)

APP = str(Path(__file__).resolve().parents[3] / "dashboard" / "app.py")


def _install(
    path: Path, rates: CostRates | None, with_actions: bool = False
) -> Iterator[runtime.Monitor]:
    store = MonitorStore.open(path)
    # An API that is not there (nothing listens on port 9): every call fails, in words.
    client = open_client(
        load_settings(
            {
                "E2B_API_KEY": "e2b_" + "0" * 40,
                "E2B_API_URL": "http://127.0.0.1:9",
                "SANDSCOPE_MAX_ATTEMPTS": "1",
            },
            secrets_file=None,
        )
    )
    monitor = runtime.Monitor(
        store=store,
        actions=ActionRunner(client, store) if with_actions else None,
        logins=Logins(users={}),
        poll_interval_s=5.0,
        target_description="known samples (tests)",
        cost_rates=rates,
    )
    runtime.install(monitor)
    yield monitor
    runtime.install(None)
    client.close()
    store.close()


@pytest.fixture
def known_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    path = tmp_path / "known.duckdb"
    fill(path, datetime.now(UTC))
    yield from _install(path, CostRates(per_vcpu_hour=1.0, per_gib_hour=2.0))


@pytest.fixture
def catalog_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    """The known store with its catalog, and actions through an API that is down."""
    path = tmp_path / "known.duckdb"
    now = datetime.now(UTC)
    fill(path, now)
    add_catalog(path, now, catalog_row("big1", ["team/big", "big"], now, public=True))
    yield from _install(path, None, with_actions=True)


@pytest.fixture
def empty_monitor(tmp_path: Path) -> Iterator[runtime.Monitor]:
    yield from _install(tmp_path / "empty.duckdb", None)


def open_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    app.switch_page("templates/page.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def table(app: AppTest, column: str) -> pd.DataFrame:
    """The page's table that has `column` (AppTest does not keep a table's key)."""
    for element in app.dataframe:
        if column in element.value.columns:
            frame: pd.DataFrame = element.value
            return frame
    raise AssertionError(f"no table with a {column} column")


def test_the_fit_table_shows_known_percentiles_and_the_suggestion(
    known_monitor: runtime.Monitor,
) -> None:
    app = open_page()
    fit = table(app, "peak_p95")
    row = fit.set_index("group_value").loc[TEMPLATE]
    assert row["sandboxes"] == 5
    assert row["memory"] == "512 MiB"
    assert row["peak_p95"] == P95_TEXT and row["peak_max"] == "500 MiB"
    assert row["headroom"] == HEADROOM_TEXT
    assert row["ooms_per_100"] == "20.0"
    assert row["suggested"] == SUGGESTED_TEXT
    usage = table(app, "vcpu_hours").set_index("group_value")
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
    fit = table(app, "peak_p95").set_index("group_value")
    assert list(fit.index) == ["odd", "even"]  # most sandboxes first
    assert fit.loc["even", "peak_max"] == "400 MiB"
    assert fit.loc["odd", "ooms_per_100"] == "33.3"


def test_an_empty_store_says_so(empty_monitor: runtime.Monitor) -> None:
    app = open_page()
    infos = [str(info.value) for info in app.info]
    assert any(info.startswith("No template listed yet") for info in infos)
    assert "No sandbox started in this range." in infos
    assert "No sandbox was alive in this range." in infos


def _shown(app: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "success")
    return "\n".join(str(e.value) for kind in kinds for e in app.get(kind))


def test_the_catalog_lists_every_template_and_opens_one(
    catalog_monitor: runtime.Monitor,
) -> None:
    app = open_page()
    catalog = table(app, "other_names").set_index("template_id")
    assert list(catalog.index) == [TEMPLATE, "big1"]  # by name: "small" before "team/big"
    big = catalog.loc["big1"]
    assert (big["name"], big["other_names"], big["public"]) == ("team/big", "big", True)
    small = catalog.loc[TEMPLATE]
    assert (small["cpu"], small["memory"], small["disk"]) == ("1 vCPU", "512 MiB", "1024 MiB")
    assert (small["builds"], small["build_status"], small["spawns"]) == (2, "ready", 5)

    app.selectbox(key="templates_open").set_value(TEMPLATE).run()
    assert not app.exception, [e.value for e in app.exception]
    shown = _shown(app)
    # Builds are read from the API, which is down here: said in words.
    assert "The template's builds could not be read" in shown and "unreachable" in shown
    assert "Suggested: 1024 MiB" in shown


def test_the_remedy_from_a_template_says_what_it_creates_and_audits_a_failure(
    catalog_monitor: runtime.Monitor,
) -> None:
    app = open_page()
    app.selectbox(key="templates_open").set_value(TEMPLATE).run()
    app.button(key="remedy_template").click().run()
    assert not app.exception, [e.value for e in app.exception]
    dialog = _shown(app)
    assert (
        "Create a new template named `small-1024`, built from template `small` with nothing "
        "added, with 1024 MiB of memory (was 512 MiB) and 1 vCPU." in dialog
    )
    # Per-sandbox CPU peaks 10..50 %: p95 48 %.
    assert "vCPUs kept: not CPU-bound (the p95 of its sandboxes' peak CPU 48 %" in dialog

    app.button(key="remedy_create").click().run()
    assert not app.exception, [e.value for e in app.exception]
    errors = " ".join(str(e.value) for e in app.error)
    assert "not created: API unreachable" in errors
    audit = catalog_monitor.store.actions_latest(10)
    (row,) = audit[audit["action"] == AUDIT_ACTION].to_dict("records")
    assert row["outcome"] == "failed" and "not created: API unreachable" in row["detail"]
    app.button(key="remedy_done").click().run()  # put away
    assert not any("not created" in str(e.value) for e in app.error)


def test_read_only_mode_shows_the_catalog_without_builds_or_remedy(tmp_path: Path) -> None:
    path = tmp_path / "known.duckdb"
    now = datetime.now(UTC)
    fill(path, now)
    add_catalog(path, now)
    for _ in _install(path, None, with_actions=False):
        app = open_page()
        app.selectbox(key="templates_open").set_value(TEMPLATE).run()
        assert not app.exception, [e.value for e in app.exception]
        assert "which read-only mode does not call" in _shown(app)
        assert BUTTON_LABEL not in {b.label for b in app.button}
