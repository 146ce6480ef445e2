"""The dashboard's questions on small hand-built data: shapes, values, and spikes kept."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from storage import MonitorStore
from storage.downsample import sandbox_plan, team_plan
from storage.rows import CollectorRun, LogLineRow
from tests.storage.rowmaker import GIB, T0, at, sample, samples_every_5s, sandbox

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


def test_hottest_sandboxes_by_each_gauge(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a"), sandbox("b"), sandbox("c", template_id="big")])
    store.add_samples(
        [
            sample("a", 0, mem_used_bytes=GIB // 2, cpu_used_pct=90.0),
            sample("a", 5, mem_used_bytes=GIB // 10),
            sample("b", 0, mem_used_bytes=GIB // 4, disk_used_bytes=2 * GIB - 1),
            sample("c", 0, mem_used_bytes=GIB - 1),
            sample("c", -600, mem_used_bytes=GIB),  # before `since`
        ]
    )
    by_mem = store.hottest_sandboxes(at(-60), 2)
    assert by_mem["sandbox_id"].tolist() == ["c", "a"]
    assert by_mem.loc[0, "template_id"] == "big"
    assert by_mem.loc[1, "peak_mem_pct"] == pytest.approx(50.0)
    assert by_mem.loc[1, "mem_used_bytes"] == GIB // 10  # latest sample
    assert by_mem.loc[1, "samples"] == 2
    assert store.hottest_sandboxes(at(-60), 1, by="cpu")["sandbox_id"].tolist() == ["a"]
    assert store.hottest_sandboxes(at(-60), 1, by="disk")["sandbox_id"].tolist() == ["b"]
    with pytest.raises(ValueError, match="by must be"):
        store.hottest_sandboxes(T0, 1, by="heat")


def test_logs_around_a_time(store: MonitorStore) -> None:
    lines = [LogLineRow("a", at(s), "info", f"line {s}", "{}") for s in range(10)]
    store.add_log_lines([*lines, LogLineRow("b", at(5), "info", "other", "{}")])
    got = store.logs_around("a", at(5), before=3, after=2)
    assert list(got.columns) == ["ts", "level", "message", "fields_json"]
    assert got["message"].tolist() == ["line 3", "line 4", "line 5", "line 6", "line 7"]


def test_data_freshness_per_job(store: MonitorStore) -> None:
    store.record_run(CollectorRun("list", at(0), at(1), 10, None))
    store.record_run(CollectorRun("list", at(5), at(6), 0, "HTTP 429", retry_after_s=30.0))
    store.record_run(CollectorRun("events", at(0), at(2), 3, "timeout"))

    got = store.data_freshness(at(61)).set_index("job")
    assert list(got.columns) == [
        "last_run_at",
        "last_success_at",
        "age_s",
        "rows_written",
        "last_error",
        "retry_after_s",
    ]
    assert got.loc["list", "last_run_at"] == at(6)
    assert got.loc["list", "last_success_at"] == at(1)
    assert got.loc["list", "age_s"] == 60.0
    assert got.loc["list", "last_error"] == "HTTP 429"
    assert got.loc["list", "retry_after_s"] == 30.0
    assert pd.isna(got.loc["events", "last_success_at"])
    assert pd.isna(got.loc["events", "age_s"])


def test_empty_store_answers_with_empty_frames(store: MonitorStore) -> None:
    assert store.sandbox_series("a", T0, at(60), 10).empty
    assert list(store.team_usage(T0, at(86400), 100).columns) == TEAM_COLUMNS
    assert store.hottest_sandboxes(T0, 10).empty
    assert store.team_peaks().empty
    assert store.data_freshness(T0).empty
    assert store.newest_event_at() is None
    assert store.live_sandbox_ids() == set()
