"""The fleet now: the sandbox list and one sandbox's record, the live ids, the team's
peaks, and the triage table's latest samples, slopes and life-long peaks wherever the
samples live."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, timedelta

import pandas as pd
import pytest

from storage import MonitorStore, SandboxRecord, tables
from storage.reads.latest_samples import scan_ranges
from storage.rows import SandboxEndRow
from tests.storage.rowmaker import GIB, T0, at, sample, samples_every_5s, sandbox

TRIAGE_EXTRA = [
    "last_sample_at",
    "cpu_used_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "mem_cache_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
    "peak_mem_used_bytes",
    "mem_slope_bytes_per_s",
    "disk_slope_bytes_per_s",
]


def _ramp(sandbox_id: str, from_s: int, until_s: int) -> list:  # type: ignore[type-arg]
    """Memory growing 10 bytes/s and disk 100 bytes/s, from 1000 and GIB at T0."""
    return [
        sample(sandbox_id, t, mem_used_bytes=1000 + 10 * t, disk_used_bytes=GIB + 100 * t)
        for t in range(from_s, until_s, 5)
    ]


def test_triage_rows_latest_sample_slopes_and_order(store: MonitorStore) -> None:
    store.upsert_sandboxes(
        [sandbox("a"), sandbox("b", seen_s=10), sandbox("quiet", seen_s=20, cpu_count=4)]
    )
    store.upsert_sandboxes([sandbox("b", seen_s=30, state="paused")])
    store.add_samples(_ramp("a", 0, 3600) + samples_every_5s("b", 3590, 3600))
    store.add_samples(_ramp("a", 3600, 4000))  # at `now` (seen) and after (not)

    got = store.triage_rows(at(3600), trend_window_s=300)
    assert list(got.columns) == [*store.sandboxes().columns, *TRIAGE_EXTRA]
    assert got["sandbox_id"].tolist() == ["quiet", "b", "a"]  # newest first sighting first
    assert all(str(got[c].dtype) == "float64" for c in TRIAGE_EXTRA[1:])
    a = got.set_index("sandbox_id").loc["a"]
    assert a["last_sample_at"] == at(3600)
    assert a["mem_used_bytes"] == 1000 + 10 * 3600
    assert a["disk_used_bytes"] == GIB + 100 * 3600
    assert a["mem_total_bytes"] == GIB and a["cpu_used_pct"] == 10.0
    assert a["peak_mem_used_bytes"] == 1000 + 10 * 3600
    assert a["mem_slope_bytes_per_s"] == pytest.approx(10.0, rel=1e-9)
    assert a["disk_slope_bytes_per_s"] == pytest.approx(100.0, rel=1e-9)
    b = got.set_index("sandbox_id").loc["b"]
    assert b["state"] == "paused"
    assert b["last_sample_at"] == at(3595)
    assert pd.isna(b["mem_slope_bytes_per_s"])  # 2 samples: too few for a trend
    quiet = got.set_index("sandbox_id").loc["quiet"]
    assert quiet["cpu_count"] == 4
    assert pd.isna(quiet["last_sample_at"])
    assert got.set_index("sandbox_id").loc["quiet", TRIAGE_EXTRA[1:]].isna().all()


def test_triage_peak_spans_the_rollup_and_the_raw_tail(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("old-peak"), sandbox("new-peak")])
    store.add_samples(
        samples_every_5s("old-peak", 0, 2 * 86400, mem_used_bytes=100)
        + samples_every_5s("new-peak", 0, 2 * 86400, mem_used_bytes=100)
    )
    with store._writing("a spike") as con:
        con.execute(
            "UPDATE samples SET mem_used_bytes = 7777 WHERE sandbox_id = 'old-peak' AND ts = ?",
            [at(3600)],
        )
    store.roll_up(at(2 * 86400))
    store.forget_old(at(2 * 86400), raw_days=1, rollup_days=30)  # the spike's raw row goes
    store.add_samples(
        [sample("new-peak", 2 * 86400 + t, mem_used_bytes=100 + t) for t in (0, 5, 10)]
    )  # after the rollup: only in raw samples

    got = store.triage_rows(at(2 * 86400 + 15)).set_index("sandbox_id")
    assert got.loc["old-peak", "peak_mem_used_bytes"] == 7777
    assert got.loc["new-peak", "peak_mem_used_bytes"] == 110
    assert got.loc["new-peak", "mem_used_bytes"] == 110
    assert got.loc["old-peak", "last_sample_at"] == at(2 * 86400 - 5)


def test_triage_reaches_back_for_sandboxes_not_sampled_lately(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox(i) for i in ("live", "paused", "late", "gone", "gone-early")])
    store.add_samples(
        samples_every_5s("paused", 0, 3600, mem_used_bytes=300)
        + samples_every_5s("gone", 0, 1800, mem_used_bytes=400)
        + samples_every_5s("gone-early", 0, 600, mem_used_bytes=500)
        + samples_every_5s("live", 0, 4 * 3600)
        + samples_every_5s("late", 0, 9000, mem_used_bytes=600)  # past the rollup
    )
    store.add_samples([sample("paused", 3600, mem_used_bytes=333, cpu_used_pct=3.0)])
    store.roll_up(at(2 * 3600))  # "paused" and "gone" end in rolled-up minutes
    store.mark_ended(
        [SandboxEndRow(i, at(4 * 3600), at(s), "killed") for i, s in (("gone", 1800),)]
        + [SandboxEndRow("gone-early", at(4 * 3600), at(600), "timeout")]
    )
    now = at(4 * 3600)

    live = store.triage_rows(now).set_index("sandbox_id")
    assert sorted(live.index) == ["late", "live", "paused"]
    assert live.loc["late", "last_sample_at"] == at(8995)
    assert live.loc["late", "mem_used_bytes"] == 600
    assert live.loc["paused", "last_sample_at"] == at(3600)
    assert live.loc["paused", "mem_used_bytes"] == 333
    assert live.loc["paused", "cpu_used_pct"] == 3.0
    assert pd.isna(live.loc["paused", "mem_slope_bytes_per_s"])
    every = store.triage_rows(now, include_ended=True).set_index("sandbox_id")
    assert every.loc["gone", "last_sample_at"] == at(1795)
    assert every.loc["gone", "mem_used_bytes"] == 400
    assert every.loc["gone-early", "last_sample_at"] == at(595)
    assert bool(every.loc["gone", "ended"]) is True
    # Asked again: the same answer (these no longer change, so they are remembered).
    again = store.triage_rows(now, include_ended=True).set_index("sandbox_id")
    pd.testing.assert_frame_equal(again, every)
    # Resumed: its new samples win over the remembered one.
    store.add_samples(samples_every_5s("paused", 4 * 3600 - 60, 4 * 3600, mem_used_bytes=9))
    resumed = store.triage_rows(now).set_index("sandbox_id")
    assert resumed.loc["paused", "mem_used_bytes"] == 9
    assert resumed.loc["paused", "last_sample_at"] == at(4 * 3600 - 5)


def test_triage_without_raw_samples_left_keeps_the_peak(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("paused", end_at=at(10 * 86400))])
    store.add_samples(samples_every_5s("paused", 0, 600, mem_used_bytes=42))
    store.roll_up(at(3 * 86400))
    store.forget_old(at(3 * 86400), raw_days=1, rollup_days=30)
    got = store.triage_rows(at(3 * 86400)).set_index("sandbox_id")
    assert got.loc["paused", "peak_mem_used_bytes"] == 42
    assert pd.isna(got.loc["paused", "last_sample_at"])  # its raw samples are gone
    assert pd.isna(got.loc["paused", "mem_used_bytes"])


def test_triage_of_an_empty_store(store: MonitorStore) -> None:
    got = store.triage_rows(T0)
    assert got.empty
    assert list(got.columns) == [*store.sandboxes().columns, *TRIAGE_EXTRA]
    with pytest.raises(ValueError, match="trend_window_s"):
        store.triage_rows(T0, trend_window_s=0)


def test_scan_ranges_merge_overlaps_then_the_closest() -> None:
    minute = timedelta(minutes=1)
    starts = [at(0), at(30), at(600), at(3600), at(3605), at(7200)]
    assert scan_ranges(starts) == [
        (at(0), at(30) + minute),
        (at(600), at(600) + minute),
        (at(3600), at(3605) + minute),
        (at(7200), at(7200) + minute),
    ]
    assert scan_ranges(starts, max_ranges=2) == [(at(0), at(3605) + minute), (at(7200), at(7260))]
    assert scan_ranges([]) == []


def test_sandbox_record_of_live_ended_and_unknown(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a", alias="web"), sandbox("b")])
    store.mark_ended([SandboxEndRow("b", at(60), None, None)])

    a = store.sandbox_record("a")
    assert a is not None
    assert a.alias == "web" and a.ended is False and a.ended_at is None
    assert a.started_at == T0 and a.started_at.tzinfo is UTC
    assert a.metadata_json == '{"owner": "tests"}'
    b = store.sandbox_record("b")
    assert b is not None and b.ended is True and b.last_seen_at == at(60)
    assert store.sandbox_record("nope") is None


def test_sandbox_records_reads_many_at_once_and_leaves_out_the_unknown(
    store: MonitorStore,
) -> None:
    store.upsert_sandboxes([sandbox("a", alias="web"), sandbox("b"), sandbox("c")])
    store.mark_ended([SandboxEndRow("b", at(60), None, None)])

    records = store.sandbox_records(["b", "a", "nope", "a"])

    assert sorted(records) == ["a", "b"]
    assert records["a"] == store.sandbox_record("a")
    assert records["b"].ended is True and records["b"].last_seen_at == at(60)
    assert store.sandbox_records([]) == {}


def test_a_record_and_a_listed_row_are_the_table_s_columns(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a")])
    record = store.sandbox_record("a")
    listed = store.sandboxes().iloc[0]

    assert [f.name for f in fields(SandboxRecord)] == list(tables.SANDBOXES.names)
    assert list(listed.index) == list(tables.SANDBOXES.names)
    assert record is not None
    assert {k: getattr(record, k) for k in ("sandbox_id", "memory_mb", "state")} == {
        "sandbox_id": listed["sandbox_id"],
        "memory_mb": listed["memory_mb"],
        "state": listed["state"],
    }


def test_live_ids_and_team_peaks_of_an_empty_store(store: MonitorStore) -> None:
    assert store.live_sandbox_ids() == set()
    assert store.team_peaks().empty
