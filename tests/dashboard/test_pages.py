"""Every page under Streamlit's AppTest, against the session's real monitor: a DuckDB file
that real collectors fill from a real sandboxd (tests/dashboard/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from dashboard.actions.runner import ActionRunner
from dashboard.incidents.report import incident_key
from dashboard.serving import runtime
from e2bapi.actions.sandboxes import connect_sandbox, get_sandbox
from sandscope.clients import open_client
from sandscope.settings import load_settings
from tests.dashboard.conftest import BUSY_CPU_PCT, Filled, replace_monitor

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT_S = 30


def open_page(page: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    for name, value in query.items():
        app.query_params[name] = value
    app.run()
    if page != "overview":
        app.switch_page(f"{page}/page.py")
        app.run()
    return app


def shown_text(app: AppTest) -> str:
    """Everything the page wrote: markdown, captions, alerts, metrics, titles."""
    parts: list[str] = []
    for kind in (
        "title",
        "subheader",
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
    ):
        parts.extend(str(element.value) for element in app.get(kind))
    parts.extend(f"{m.label} {m.value}" for m in app.metric)
    return "\n".join(parts)


def frames(app: AppTest) -> list[pd.DataFrame]:
    frames = []
    for element in app.dataframe:
        value = element.value
        frames.append(value.data if hasattr(value, "data") else value)
    return frames


def assert_no_exception(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


def test_overview_shows_the_team_charts_and_cards(installed: Filled) -> None:
    app = open_page("overview")
    assert_no_exception(app)
    assert len(app.get("plotly_chart")) == 5
    labels = [metric.label for metric in app.metric]
    assert labels[:2] == ["Running", "Team maximum (7 d)"]
    for card in ("CPU", "Memory", "Disk"):
        (label,) = [label for label in labels if label.startswith(card)]
        assert label.endswith("% of allotted")  # the share, beside the team total
    running = next(m for m in app.metric if m.label == "Running")
    assert running.value.endswith("of 8")
    assert "Data" in shown_text(app)  # the freshness banner


def test_triage_lists_the_live_sandboxes_and_not_the_killed_one(installed: Filled) -> None:
    app = open_page("sandboxes")
    assert_no_exception(app)
    (table,) = frames(app)
    ids = set(table["sandbox_id"])
    assert {installed.busy_id, installed.oom_id, installed.paused_id} <= ids
    assert installed.killed_id not in ids
    paused = table[table["sandbox_id"] == installed.paused_id].iloc[0]
    assert paused["state"] == "paused"
    busy = table[table["sandbox_id"] == installed.busy_id].iloc[0]
    assert busy["cpu_pct"] > BUSY_CPU_PCT  # its busy loop


def test_triage_search_narrows_the_table(installed: Filled) -> None:
    app = open_page("sandboxes")
    app.text_input[0].input(installed.oom_id).run()
    assert_no_exception(app)
    (table,) = frames(app)
    assert list(table["sandbox_id"]) == [installed.oom_id]


def test_a_metadata_filter_matching_nothing_says_so(installed: Filled) -> None:
    app = open_page("sandboxes")
    metadata = next(box for box in app.text_input if box.label == "Metadata")
    metadata.input("no-such-key=nothing").run()
    assert_no_exception(app)
    assert not frames(app)
    assert "No sandbox matches the filters" in shown_text(app)
    assert "No sandboxes yet" not in shown_text(app)


def test_detail_of_the_oom_sandbox_marks_the_kill_and_gives_a_verdict(installed: Filled) -> None:
    app = open_page("sandbox", id=installed.oom_id)
    assert_no_exception(app)
    text = shown_text(app)
    assert installed.oom_id in text
    assert "OOM" in text  # the verdict's evidence names the OOM kill
    charts = app.get("plotly_chart")
    assert len(charts) == 3
    memory_figure = charts[1].proto.spec
    assert "OOM kill" in memory_figure


def test_detail_of_the_killed_sandbox_says_it_was_killed(installed: Filled) -> None:
    app = open_page("sandbox", id=installed.killed_id)
    assert_no_exception(app)
    assert "killed" in shown_text(app).lower()
    events = frames(app)[-1]  # the lifecycle events, last on the page
    assert events["type"].str.contains("killed").any()
    assert set(events.loc[~events["type"].str.contains("killed"), "kill_reason"]) == {"—"}


def test_detail_of_an_unknown_sandbox_says_so(installed: Filled) -> None:
    app = open_page("sandbox", id="no-such-sandbox")
    assert_no_exception(app)
    assert "No sandbox with ID `no-such-sandbox` is known" in shown_text(app)


def test_incidents_list_the_oom_kill_and_open_it_with_its_log_lines(installed: Filled) -> None:
    app = open_page("incidents")
    assert_no_exception(app)
    (listing,) = frames(app)
    assert installed.oom_id in set(listing["sandbox_id"])
    killed = listing[(listing["sandbox_id"] == installed.oom_id) & (listing["kind"] == "confirmed")]
    assert set(killed["memory"]) == {"limit reached / 128 MiB"}
    incident = installed.store.sandbox_incidents(installed.oom_id).iloc[0]
    key = incident_key(
        {"sandbox_id": installed.oom_id, "occurred_at": incident["occurred_at"].to_pydatetime()}
    )

    opened = open_page("incidents", incident=key)
    assert_no_exception(opened)
    assert {"Limit", "Peak", "Suggested memory"} <= {m.label for m in opened.metric}
    logs = frames(opened)[1]
    assert logs["message"].str.contains("OOM|oom|Killed", regex=True).any()
    assert len(opened.get("download_button")) == 2


def test_an_incident_key_that_is_junk_gives_a_message(installed: Filled) -> None:
    app = open_page("incidents", incident="not-a-key")
    assert_no_exception(app)
    assert "went wrong while opening the incident" in shown_text(app)


def test_events_page_shows_the_kill_and_the_audit(installed: Filled) -> None:
    app = open_page("events")
    assert_no_exception(app)
    events = frames(app)[0]
    killed = events[events["sandbox_id"] == installed.killed_id]
    assert killed["type"].str.contains("killed").any()
    # Events that are no kill have no kill reason: a dash, never "None".
    reasons = set(events.loc[~events["type"].str.contains("killed"), "kill_reason"])
    assert reasons == {"—"}


def test_outside_the_monitor_the_app_says_how_to_start_it() -> None:
    runtime.install(None)
    app = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert_no_exception(app)
    assert "make run" in shown_text(app)


def test_read_only_mode_hides_every_action(installed: Filled) -> None:
    action_labels = {"Pause", "Resume", "Extend", "Delete"}
    with_actions = open_page("sandbox", id=installed.busy_id)
    assert action_labels <= {button.label for button in with_actions.button}

    replace_monitor(installed, actions=None)
    read_only = open_page("sandbox", id=installed.busy_id)
    assert_no_exception(read_only)
    assert not action_labels & {button.label for button in read_only.button}


def test_pausing_from_the_detail_page_confirms_acts_and_audits(installed: Filled) -> None:
    app = open_page("sandbox", id=installed.busy_id)
    next(b for b in app.button if b.label == "Pause").click().run()
    assert_no_exception(app)
    assert f"Pause 1 sandbox ({installed.busy_id})" in shown_text(app)
    app.button(key="confirm_act").click().run()
    assert_no_exception(app)
    assert f"Pause {installed.busy_id}: paused" in shown_text(app)
    assert installed.client.run(get_sandbox(installed.busy_id)).state == "paused"
    audit = installed.store.actions_latest(10)
    assert (audit["action"] == "pause").any()
    installed.client.run(connect_sandbox(installed.busy_id, 600))  # as it was


def test_an_action_while_the_api_is_down_says_so_in_words(installed: Filled) -> None:
    unreachable = open_client(
        load_settings(
            {
                "E2B_API_KEY": "e2b_" + "0" * 40,
                "E2B_API_URL": "http://127.0.0.1:9",
                "SANDSCOPE_MAX_ATTEMPTS": "1",
            },
            secrets_file=None,
        )
    )
    replace_monitor(installed, actions=ActionRunner(unreachable, installed.store))
    app = open_page("sandbox", id=installed.oom_id)
    next(b for b in app.button if b.label == "Pause").click().run()
    app.button(key="confirm_act").click().run()
    unreachable.close()
    assert_no_exception(app)
    errors = " ".join(str(e.value) for e in app.error)
    assert installed.oom_id in errors and "unreachable" in errors.lower()


def test_a_paused_sandbox_offers_resume_and_delete_but_not_pause(installed: Filled) -> None:
    app = open_page("sandbox", id=installed.paused_id)
    assert_no_exception(app)
    disabled = {button.label: button.disabled for button in app.button}
    assert disabled == {"Pause": True, "Resume": False, "Extend": True, "Delete": False}


def test_a_mixed_selection_applies_each_action_to_the_sandboxes_it_fits(
    installed: Filled,
) -> None:
    app = open_page("sandboxes")
    app.session_state["pinned_sandbox_ids"] = [installed.oom_id, installed.paused_id]
    app.run()
    assert_no_exception(app)
    disabled = {button.label: button.disabled for button in app.button}
    assert disabled == {"Pause": False, "Resume": False, "Extend": False, "Delete": False}

    next(b for b in app.button if b.label == "Pause").click().run()
    text = shown_text(app)
    assert f"Pause 1 sandbox ({installed.oom_id})" in text
    assert f"Left alone, as their state does not allow it: {installed.paused_id} (paused)" in text
    app.button(key="confirm_cancel").click().run()
    assert installed.client.run(get_sandbox(installed.paused_id)).state == "paused"
