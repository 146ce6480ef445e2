"""Bulk writes: each kind of row is kept once, whatever the batches look like."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage import MonitorStore
from storage.rows import (
    CollectorRun,
    EventRow,
    IncidentRow,
    LogLineRow,
    SandboxEndRow,
    TeamMaxRow,
    TeamSampleRow,
)
from tests.storage.rowmaker import T0, at, sample, samples_every_5s, sandbox


def _count(store: MonitorStore, table: str) -> int:
    with store._reading() as cur:
        row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_samples_are_kept_once_per_sandbox_and_time(store: MonitorStore) -> None:
    first = samples_every_5s("a", 0, 100) + samples_every_5s("b", 0, 100)  # 20 + 20
    assert store.add_samples(first) == 40
    assert store.add_samples(first) == 0  # the same batch again
    overlapping = samples_every_5s("a", 50, 150) + samples_every_5s("b", 95, 105)
    assert store.add_samples(overlapping) == 10 + 1
    inside = [sample("c", 0), sample("c", 0, cpu_used_pct=99.0), sample("c", 5), sample("c", 5)]
    assert store.add_samples(inside) == 2
    # Same time, other sandbox; same sandbox, other time: both new.
    assert store.add_samples([sample("c", 10), sample("d", 0)]) == 2
    with store._reading() as cur:
        dupes = cur.execute(
            "SELECT count(*) FROM (SELECT sandbox_id, ts FROM samples"
            " GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    assert dupes == (0,)
    assert _count(store, "samples") == 40 + 11 + 2 + 2


def test_samples_are_stored_in_time_order(store: MonitorStore) -> None:
    store.add_samples([sample("a", 30), sample("b", 10), sample("a", 20), sample("b", 0)])
    with store._reading() as cur:
        stored = [r[0] for r in cur.execute("SELECT ts FROM samples").fetchall()]
    assert stored == sorted(stored)


def test_naive_datetimes_are_refused(store: MonitorStore) -> None:
    naive = sample("a", 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_samples([replace(naive, ts=naive.ts.replace(tzinfo=None))])


def test_upsert_keeps_first_seen_and_updates_the_rest(store: MonitorStore) -> None:
    assert store.upsert_sandboxes([sandbox("a", 0), sandbox("b", 0)]) == 2
    assert store.upsert_sandboxes([sandbox("a", 0), sandbox("b", 0)]) == 0  # a replayed poll
    later = sandbox("a", 10, state="paused", alias="web", metadata={"k": "v"})
    assert store.upsert_sandboxes([sandbox("a", 5), later]) == 1  # latest in batch wins

    row = store.sandbox_record("a")
    assert row is not None
    assert (row.state, row.alias, row.metadata_json) == ("paused", "web", '{"k": "v"}')
    assert (row.first_seen_at, row.last_seen_at) == (T0, at(10))
    listed = store.sandboxes().set_index("sandbox_id")
    assert listed.loc["a", "first_seen_at"] == T0
    assert listed.loc["a", "last_seen_at"] == at(10)
    assert store.sandbox_record("missing") is None


def test_mark_ended_keeps_a_known_reason(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a", 0), sandbox("b", 0), sandbox("c", 0)])
    assert store.mark_ended([SandboxEndRow("a", at(0), None, None)]) == 1
    assert store.mark_ended([SandboxEndRow("a", at(0), None, None)]) == 0
    assert store.live_sandbox_ids() == {"b", "c"}
    # The killed event arrives: its reason and time replace the unknown ones...
    assert store.mark_ended([SandboxEndRow("a", at(0), at(3), "oom")]) == 1
    # ...and a later guess does not overwrite them.
    assert store.mark_ended([SandboxEndRow("a", at(0), at(9), "timeout")]) == 0
    assert store.mark_ended([SandboxEndRow("nobody", at(0), None, "oom")]) == 0

    ended = store.sandboxes(include_ended=True).set_index("sandbox_id")
    assert bool(ended.loc["a", "ended"]) is True
    assert ended.loc["a", "end_reason"] == "oom"
    assert ended.loc["a", "ended_at"] == at(3)
    assert set(store.sandboxes()["sandbox_id"]) == {"b", "c"}


def test_a_sandbox_listed_again_after_it_ended_is_live_again(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a", 0)])
    store.mark_ended([SandboxEndRow("a", at(0), None, "paused")])
    store.upsert_sandboxes([sandbox("a", 0)])  # a replay of the old poll changes nothing
    assert store.live_sandbox_ids() == set()
    store.upsert_sandboxes([sandbox("a", 60)])
    assert store.live_sandbox_ids() == {"a"}
    # A stale end (from before the new sighting) does not end it again.
    assert store.mark_ended([SandboxEndRow("a", at(30), None, None)]) == 0
    assert store.live_sandbox_ids() == {"a"}


def test_team_samples_once_per_time(store: MonitorStore) -> None:
    rows = [TeamSampleRow(at(0), 3, 0.5), TeamSampleRow(at(5), 4, 0.2)]
    assert store.add_team_samples(rows) == 2
    assert store.add_team_samples([*rows, rows[0], TeamSampleRow(at(10), 1, 0.0)]) == 1
    assert _count(store, "team_samples") == 3


def test_team_maxima_keep_a_short_history_and_the_latest(store: MonitorStore) -> None:
    peak = TeamMaxRow("concurrent_sandboxes", "1h", at(0), at(-100), 7.0)
    assert store.add_team_maxima([peak]) == 1
    assert store.add_team_maxima([peak]) == 0
    # The same peak observed again: one row, observed later.
    assert store.add_team_maxima([replace(peak, observed_at=at(60))]) == 1
    assert _count(store, "team_maxima") == 1
    new_peak = TeamMaxRow("concurrent_sandboxes", "1h", at(120), at(110), 9.0)
    rate = TeamMaxRow("sandbox_start_rate", "24h", at(120), at(5), 0.5)
    assert store.add_team_maxima([new_peak, replace(new_peak, observed_at=at(90)), rate]) == 2
    assert store.add_team_maxima([replace(peak, observed_at=at(30))]) == 0  # older: ignored

    peaks = store.team_peaks()
    assert list(peaks.columns) == ["metric", "window", "value", "peak_at", "observed_at"]
    assert peaks.values.tolist() == [
        ["concurrent_sandboxes", "1h", 9.0, at(110), at(120)],
        ["sandbox_start_rate", "24h", 0.5, at(5), at(120)],
    ]


def test_events_once_per_id(store: MonitorStore) -> None:
    killed = EventRow("e1", "a", "sandbox.lifecycle.killed", at(0), "team", "oom", "{}")
    created = EventRow("e0", "a", "sandbox.lifecycle.created", at(-10), "team", None, "{}")
    assert store.add_events([killed, killed]) == 1
    assert store.add_events([created, killed]) == 1
    assert store.newest_event_at() == at(0)
    assert store.events_since(at(-60))["event_id"].tolist() == ["e0", "e1"]
    assert store.events_since(at(-5))["event_id"].tolist() == ["e1"]
    assert store.events_since(at(-60), sandbox_id="other").empty


def test_log_lines_once_per_sandbox_time_and_message(store: MonitorStore) -> None:
    line = LogLineRow("a", at(0), "info", "hello", "{}")
    assert store.add_log_lines([line, line, replace(line, message="other")]) == 2
    assert store.add_log_lines([line, replace(line, sandbox_id="b")]) == 1


def test_incidents_once_per_sandbox_kind_and_time(store: MonitorStore) -> None:
    oom = IncidentRow("a", "oom_confirmed", at(0), at(1), "python", 42, 10, 20, "log line")
    assert store.add_incidents([oom, oom]) == 1
    assert store.add_incidents([oom, replace(oom, kind="oom_suspected")]) == 1
    got = store.incidents_since(at(-1))
    assert got["kind"].tolist() == ["oom_confirmed", "oom_suspected"]
    assert got.loc[0, "occurred_at"] == at(0)


def test_runs_snapshots_and_actions(store: MonitorStore) -> None:
    assert store.data_freshness(at(0)).empty
    run = CollectorRun("list", at(0), at(1), 5, None)
    store.record_run(run)
    store.record_run(CollectorRun("list", at(5), at(6), 0, "HTTP 503", retry_after_s=2.0))
    latest = store.data_freshness(at(10)).set_index("job").loc["list"]
    assert latest["last_run_at"] == at(6)
    assert (latest["rows_written"], latest["last_error"], latest["retry_after_s"]) == (
        0,
        "HTTP 503",
        2.0,
    )

    store.save_snapshot("templates", '["new"]', at(10))
    store.save_snapshot("templates", '["old"]', at(0))  # older: does not replace
    assert store.snapshot("templates") == '["new"]'
    assert store.snapshot("webhooks") is None
    store.record_action(at(0), "alice", "pause", ["a", "b"], "ok", "")
    with store._reading() as cur:
        assert cur.execute("SELECT json_text FROM snapshots").fetchall() == [('["new"]',)]
        assert cur.execute("SELECT actor, sandbox_ids FROM actions").fetchall() == [
            ("alice", ["a", "b"])
        ]


def test_last_sample_at_per_sandbox(store: MonitorStore) -> None:
    store.add_samples(samples_every_5s("a", 0, 50) + samples_every_5s("b", 0, 20))
    assert store.last_sample_at(["a", "b", "c"]) == {"a": at(45), "b": at(15)}
    assert store.last_sample_at([]) == {}


def test_empty_batches_write_nothing(store: MonitorStore) -> None:
    assert store.add_samples([]) == 0
    assert store.upsert_sandboxes([]) == 0
    assert store.mark_ended([]) == 0
    assert store.add_events([]) == 0
