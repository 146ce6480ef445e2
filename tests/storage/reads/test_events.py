"""Lifecycle events and the action audit: since a time, or the newest few."""

from __future__ import annotations

import pytest

from storage import MonitorStore
from storage.rows import EventRow
from tests.storage.rowmaker import T0, at


def test_events_latest_newest_first_with_a_limit(store: MonitorStore) -> None:
    store.add_events(
        [
            EventRow(f"e{s}", "a" if s % 2 else "b", "killed", at(s), "t", None, "{}")
            for s in range(10)
        ]
    )
    got = store.events_latest(3)
    assert list(got.columns) == list(store.events_since(T0).columns)
    assert got["event_id"].tolist() == ["e9", "e8", "e7"]
    assert store.events_latest(2, sandbox_id="b")["event_id"].tolist() == ["e8", "e6"]
    assert store.events_latest(0).empty
    with pytest.raises(ValueError, match="limit"):
        store.events_latest(-1)


def test_actions_latest_newest_first_with_lists(store: MonitorStore) -> None:
    store.record_action(at(0), "ann", "pause", ["a"], "ok", "paused")
    store.record_action(at(10), "bob", "delete", ["a", "b"], "failed", "already gone (404)")
    store.record_action(at(20), "ann", "extend", ["c"], "ok", "extended")

    got = store.actions_latest(2)
    assert list(got.columns) == ["acted_at", "actor", "action", "sandbox_ids", "outcome", "detail"]
    assert got["acted_at"].tolist() == [at(20), at(10)]
    assert got.loc[1, "sandbox_ids"] == ["a", "b"]
    assert type(got.loc[1, "sandbox_ids"]) is list
    assert store.actions_latest(1)["action"].tolist() == ["extend"]
    assert len(store.actions_latest(500)) == 3
    assert store.actions_latest(0).empty
    with pytest.raises(ValueError, match="limit"):
        store.actions_latest(-1)


def test_events_since_of_one_sandbox_or_all_oldest_first(store: MonitorStore) -> None:
    assert store.newest_event_at() is None
    store.add_events(
        [
            EventRow(f"e{s}", "a" if s % 2 else "b", "killed", at(s), "t", None, "{}")
            for s in range(4)
        ]
    )

    assert store.events_since(at(1))["event_id"].tolist() == ["e1", "e2", "e3"]
    assert store.events_since(T0, sandbox_id="a")["event_id"].tolist() == ["e1", "e3"]
    assert store.newest_event_at() == at(3)
