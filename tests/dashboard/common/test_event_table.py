"""Lifecycle events as both pages show them."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from dashboard.common.event_table import events_table
from dashboard.common.metrics import MISSING

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def stored_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": [AT, AT],
            "sandbox_id": ["a", "b"],
            "type": ["sandbox.lifecycle.created", "sandbox.lifecycle.killed"],
            "kill_reason": [None, "oom"],
            "event_json": ["{}", "{}"],
        }
    )


def test_an_event_that_is_no_kill_has_a_dash_as_its_kill_reason() -> None:
    shown = events_table(stored_events())
    assert list(shown.columns) == ["ts", "sandbox_id", "type", "kill_reason"]
    assert list(shown["kill_reason"]) == [MISSING, "oom"]


def test_one_sandboxs_events_keep_their_columns_without_the_sandbox() -> None:
    shown = events_table(stored_events()[["ts", "type", "kill_reason"]].iloc[::-1])
    assert list(shown.columns) == ["ts", "type", "kill_reason"]
    assert list(shown["kill_reason"]) == ["oom", MISSING]
