"""Gauges over time on small hand-built data: shapes, values, and spikes kept."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from storage import MonitorStore
from storage.downsample import sandbox_plan, team_plan
from storage.rows import TeamSampleRow
from tests.storage.rowmaker import GIB, T0, at, sample, samples_every_5s

SERIES_COLUMNS = [
    "bucket_start",
    "samples",
    "cpu_count",
    "cpu_used_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "mem_cache_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
]
TEAM_COLUMNS = [
    "bucket_start",
    "sandboxes",
    "cpu_used_vcpus",
    "cpu_total_vcpus",
    "mem_used_bytes",
    "mem_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
]


def _with_spike(sandbox_id: str, until_s: int, spike_s: int) -> list:  # type: ignore[type-arg]
    rows = samples_every_5s(sandbox_id, 0, until_s)
    rows[spike_s // 5] = sample(sandbox_id, spike_s, mem_used_bytes=GIB - 1, cpu_used_pct=97.0)
    return rows


def test_sandbox_series_keeps_a_one_sample_spike_at_every_zoom(store: MonitorStore) -> None:
    store.add_samples(_with_spike("a", 3600, 1235) + samples_every_5s("b", 0, 3600))
    for max_points in (720, 100, 7, 1):
        got = store.sandbox_series("a", T0, at(3600), max_points)
        assert list(got.columns) == SERIES_COLUMNS
        assert len(got) <= max_points
        assert got["mem_used_bytes"].max() == GIB - 1
        assert got["cpu_used_pct"].max() == 97.0
        assert got["samples"].sum() == 720
        assert str(got["bucket_start"].dtype) == "datetime64[us, UTC]"
    got = store.sandbox_series("a", T0, at(3600), 10)  # buckets of 360 s from T0
    assert got["bucket_start"].tolist() == [at(360 * i) for i in range(10)]
    spike_bucket = got.loc[got["mem_used_bytes"].idxmax(), "bucket_start"]
    assert spike_bucket == at(1080)  # 1235 s lies in [1080, 1440)


def test_sandbox_series_of_a_long_range_reads_the_rollup_plus_the_fresh_tail(
    store: MonitorStore,
) -> None:
    rows = _with_spike("a", 8 * 3600, 3 * 3600 + 35)
    store.add_samples(rows[: 7 * 720])
    store.roll_up(at(7 * 3600 + 120))  # rolls up the first 7 hours
    store.add_samples([*rows[7 * 720 :], sample("a", 8 * 3600 - 3, mem_used_bytes=GIB)])

    got = store.sandbox_series("a", T0, at(8 * 3600), 100)
    assert len(got) <= 100
    assert got["bucket_start"].iloc[1] - got["bucket_start"].iloc[0] == timedelta(minutes=5)
    assert got["samples"].sum() == 8 * 720 + 1  # rollup rows count their samples, no overlap
    assert got["mem_used_bytes"].max() == GIB  # the tail, not rolled up yet
    assert got.loc[got["cpu_used_pct"].idxmax(), "bucket_start"] == at(3 * 3600)


def test_team_usage_adds_sandboxes_and_keeps_the_peak(store: MonitorStore) -> None:
    store.add_samples(
        samples_every_5s("a", 0, 600, cpu_used_pct=50.0, mem_used_bytes=100)
        + samples_every_5s("b", 0, 600, cpu_count=4, cpu_used_pct=25.0, mem_used_bytes=200)
        + [sample("b", 300, cpu_count=4, cpu_used_pct=100.0, mem_used_bytes=900)]  # a dup: ignored
    )
    store.add_samples([sample("c", 302, mem_used_bytes=5000)])  # one sample, one bucket

    got = store.team_usage(T0, at(600), 60)
    assert list(got.columns) == TEAM_COLUMNS
    assert len(got) == 60  # 10 s buckets
    quiet = got.iloc[0]
    assert quiet["sandboxes"] == 2
    assert quiet["cpu_used_vcpus"] == pytest.approx(1.0 + 1.0)  # 50 % of 2 + 25 % of 4
    assert quiet["cpu_total_vcpus"] == 2 + 4
    assert quiet["mem_used_bytes"] == 300
    assert quiet["mem_total_bytes"] == 2 * GIB
    busy = got.set_index("bucket_start").loc[at(300)]
    assert busy["sandboxes"] == 3
    assert busy["mem_used_bytes"] == 5300
    assert busy["cpu_total_vcpus"] == 2 + 4 + 2


def test_team_usage_over_a_day_comes_per_minute_and_keeps_the_peak_minute(
    store: MonitorStore,
) -> None:
    store.add_samples(samples_every_5s("a", 0, 4 * 3600, mem_used_bytes=100))
    store.add_samples(samples_every_5s("b", 3600, 3600 + 60, mem_used_bytes=1000, cpu_count=4))
    store.roll_up(at(4 * 3600))
    tail = samples_every_5s("c", 4 * 3600 - 60, 4 * 3600, cpu_count=8, mem_used_bytes=0)
    store.add_samples(tail)  # not rolled up yet
    end = at(24 * 3600)

    per_minute = store.team_usage(at(0), end, 1440)
    assert list(per_minute.columns) == TEAM_COLUMNS
    assert len(per_minute) == 4 * 60  # minutes with samples only
    assert per_minute["mem_used_bytes"].max() == 1100
    assert per_minute.set_index("bucket_start").loc[at(3600), "sandboxes"] == 2
    vcpus = per_minute.set_index("bucket_start")["cpu_total_vcpus"]
    assert (vcpus[at(0)], vcpus[at(3600)], vcpus[at(4 * 3600 - 60)]) == (2, 6, 10)

    coarse = store.team_usage(at(0), end, 24)  # hour buckets: max of the minute totals
    assert coarse["bucket_start"].tolist() == [at(3600 * h) for h in range(4)]
    assert coarse["mem_used_bytes"].tolist() == [100, 1100, 100, 100]
    assert coarse["cpu_total_vcpus"].tolist() == [2, 6, 2, 10]


def test_team_usage_before_any_roll_up_still_answers_from_raw(store: MonitorStore) -> None:
    store.add_samples(samples_every_5s("a", 0, 7200, mem_used_bytes=100))
    got = store.team_usage(T0, at(7200), 120)
    assert len(got) == 120
    assert got["mem_used_bytes"].eq(100).all()


def test_plans_respect_max_points_and_round_widths_up() -> None:
    plan = sandbox_plan(T0, at(3601), 60, raw_kept_from=None, rollup_done_until=None)
    assert (plan.origin, plan.width_s, plan.rollup_until) == (T0, 61, None)
    long = sandbox_plan(
        at(30), at(30 + 7 * 86400), 2000, raw_kept_from=None, rollup_done_until=at(86400)
    )
    assert long.origin == T0 and long.width_s == 360 and long.rollup_until == at(86400)
    old = sandbox_plan(T0, at(3 * 3600), 100, raw_kept_from=at(60), rollup_done_until=at(99999))
    assert old.rollup_until == at(3 * 3600)
    assert team_plan(T0, at(60), 1000, raw_kept_from=None, rollup_done_until=None).width_s == 5
    quarter = team_plan(T0, at(900), 2000, raw_kept_from=None, rollup_done_until=at(600))
    assert (quarter.width_s, quarter.rollup_until) == (5, None)  # 15 min: raw, 5 s buckets
    hour = team_plan(T0, at(3600), 2000, raw_kept_from=None, rollup_done_until=at(3000))
    assert (hour.width_s, hour.rollup_until) == (60, at(3000))  # longer: whole minutes
    old_team = team_plan(T0, at(60), 10, raw_kept_from=at(30), rollup_done_until=at(9999))
    assert (old_team.width_s, old_team.rollup_until) == (60, at(60))
    with pytest.raises(ValueError):
        team_plan(T0, T0, 10, raw_kept_from=None, rollup_done_until=None)


def test_team_activity_keeps_the_max_of_each_bucket(store: MonitorStore) -> None:
    store.add_team_samples(
        [TeamSampleRow(at(t), 10 + t // 5, t / 100) for t in range(0, 600, 5)]
        + [TeamSampleRow(at(600), 999, 9.0)]  # at `end`: outside
    )
    got = store.team_activity(T0, at(600), 10)  # 60 s buckets
    assert list(got.columns) == ["bucket_start", "concurrent_sandboxes", "sandbox_start_rate"]
    assert str(got["bucket_start"].dtype) == "datetime64[us, UTC]"
    assert got["bucket_start"].tolist() == [at(60 * i) for i in range(10)]
    assert got["concurrent_sandboxes"].tolist() == [10 + 12 * i + 11 for i in range(10)]
    assert got["sandbox_start_rate"].iloc[-1] == pytest.approx(5.95)
    sparse = store.team_activity(at(-3600), at(120), 1000)  # 4 s buckets, most empty
    assert len(sparse) == 24
    with pytest.raises(ValueError, match="empty range"):
        store.team_activity(T0, T0, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.team_activity(datetime(2026, 1, 1), T0, 10)


def test_empty_store_answers_with_empty_series(store: MonitorStore) -> None:
    assert store.sandbox_series("a", T0, at(60), 10).empty
    assert list(store.team_usage(T0, at(86400), 100).columns) == TEAM_COLUMNS
    assert store.team_activity(T0, at(60), 10).empty
    assert store.last_sample_at(["a"]) == {}
