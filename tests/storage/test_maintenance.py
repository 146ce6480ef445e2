"""Rollups built incrementally (and rebuilt after a backfill), and retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storage import MonitorStore
from storage.rows import CollectorRun, EventRow, TeamMaxRow
from tests.storage.rowmaker import GIB, T0, at, sample, samples_every_5s


def _rollups(store: MonitorStore) -> list[tuple[Any, ...]]:
    with store._reading() as cur:
        return cur.execute(
            "SELECT sandbox_id, minute, samples, mem_used_bytes_max, mem_used_bytes_mean"
            " FROM samples_1m ORDER BY minute, sandbox_id"
        ).fetchall()


def _team(store: MonitorStore) -> list[tuple[object, ...]]:
    with store._reading() as cur:
        return cur.execute(
            "SELECT minute, sandboxes, mem_used_bytes_max FROM team_1m ORDER BY minute"
        ).fetchall()


def test_roll_up_is_incremental_and_never_counts_twice(store: MonitorStore) -> None:
    assert store.roll_up(at(600)) == 0  # nothing stored yet
    store.add_samples(samples_every_5s("a", 0, 600) + samples_every_5s("b", 0, 300))
    # Grace of 2 minutes: at T0+10 min, minutes 0..7 are complete.
    assert store.roll_up(at(600)) == 8
    assert store.roll_up(at(600)) == 0
    first = _rollups(store)
    assert len(first) == 8 + 5
    assert all(r[2] == 12 for r in first)

    store.add_samples([*samples_every_5s("a", 600, 1200), sample("b", 900, mem_used_bytes=GIB)])
    assert store.roll_up(at(1200)) == 10  # minutes 8..17
    assert store.roll_up(at(1200)) == 0
    rows = _rollups(store)
    assert rows[: len(first)] == first
    assert sum(int(r[2]) for r in rows) == 18 * 12 + 5 * 12 + 1  # every sample once
    assert [r for r in rows if r[0] == "b" and r[3] == GIB] == [("b", at(900), 1, GIB, GIB)]
    team = _team(store)
    assert [m for m, *_ in team] == [at(60 * i) for i in range(18)]
    assert team[15] == (at(900), 2, GIB + GIB // 4)


def test_a_backfill_into_rolled_up_minutes_rebuilds_them(store: MonitorStore) -> None:
    store.add_samples(samples_every_5s("a", 0, 600))
    store.roll_up(at(600))
    # The collector was down for "b": its history arrives late, into rolled-up minutes.
    store.add_samples(samples_every_5s("b", 120, 240, mem_used_bytes=100))
    store.add_samples(samples_every_5s("a", 0, 600))  # a replay: nothing new, nothing dirty
    assert store.roll_up(at(600)) == 2

    rows = _rollups(store)
    assert [(r[0], r[1], r[2]) for r in rows if r[0] == "b"] == [
        ("b", at(120), 12),
        ("b", at(180), 12),
    ]
    assert sum(int(r[2]) for r in rows) == 8 * 12 + 24
    assert dict((m, n) for m, n, _ in _team(store))[at(120)] == 2
    assert store.roll_up(at(600)) == 0


def test_a_series_after_a_backfill_shows_it_once(store: MonitorStore) -> None:
    store.add_samples(samples_every_5s("a", 0, 8 * 3600))
    store.roll_up(at(8 * 3600))
    store.add_samples(samples_every_5s("a", 0, 8 * 3600))  # the whole history again
    store.add_samples([sample("a", 3600 + 2, mem_used_bytes=GIB)])  # one missed sample
    store.roll_up(at(8 * 3600))
    got = store.sandbox_series("a", T0, at(8 * 3600), 50)
    assert got["samples"].sum() == 8 * 720 + 1
    assert got["mem_used_bytes"].max() == GIB


def test_forget_old_keeps_recent_rows_and_rollups(store: MonitorStore) -> None:
    day = 86400
    store.add_samples(
        samples_every_5s("a", 0, 3 * 3600) + samples_every_5s("a", 2 * day, 2 * day + 600)
    )
    store.roll_up(at(2 * day + 600))
    store.add_events([EventRow("e-old", "a", "killed", at(0), "t", None, "{}")])
    store.add_events([EventRow("e-new", "a", "killed", at(2 * day), "t", None, "{}")])
    store.record_run(CollectorRun("list", at(0), at(1), 1, None))
    store.add_team_maxima([TeamMaxRow("concurrent_sandboxes", "7d", at(0), at(0), 3.0)])

    store.forget_old(at(2 * day + 600), raw_days=1, rollup_days=30)

    with store._reading() as cur:
        raw = cur.execute("SELECT count(*), min(ts) FROM samples").fetchone()
    assert raw == (120, at(2 * day))
    assert store.data_freshness(at(2 * day + 600)).empty  # the run was older than raw_days
    assert store.events_since(T0)["event_id"].tolist() == ["e-old", "e-new"]  # 30 days kept
    # The old hours now come from the rollup, since their raw samples are gone.
    old = store.sandbox_series("a", T0, at(3 * 3600), 180)
    assert old["samples"].sum() == 3 * 720
    assert old["bucket_start"].iloc[1] - old["bucket_start"].iloc[0] == timedelta(minutes=1)

    store.forget_old(at(40 * day), raw_days=1, rollup_days=30)
    assert _rollups(store) == []
    assert _team(store) == []
    assert store.events_since(T0).empty
    assert len(store.team_peaks()) == 1  # the latest maximum stays, however old


def test_roll_up_totals_the_vcpus_of_the_sandboxes_sampled(store: MonitorStore) -> None:
    store.add_samples(
        samples_every_5s("a", 0, 180)
        + samples_every_5s("b", 60, 120, cpu_count=8)
        + [sample("c", 125, cpu_count=1), sample("c", 130, cpu_count=4)]  # resized: its max
    )
    store.roll_up(at(300))
    with store._reading() as cur:
        totals = cur.execute("SELECT minute, cpu_total_vcpus FROM team_1m ORDER BY minute")
        assert totals.fetchall() == [(at(0), 2), (at(60), 10), (at(120), 6)]
