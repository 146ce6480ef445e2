"""Template fit and usage on a real store with known samples: exact percentiles
(quantile_cont), OOM rates, headroom, hours and cost."""

from __future__ import annotations

import pytest

from storage import MonitorStore
from storage.reads.template_fit import FIT_COLUMNS, USAGE_COLUMNS
from storage.rows import IncidentRow, SandboxEndRow
from tests.storage.rowmaker import GIB, T0, at, sample, sandbox

MIB = 2**20


def _incident(sandbox_id: str, s: int, kind: str) -> IncidentRow:
    return IncidentRow(sandbox_id, kind, at(s), at(s + 1), "python", 7, GIB, GIB, "log")  # type: ignore[arg-type]


def _fill_small_template(store: MonitorStore) -> None:
    """Five sandboxes of template "small" (512 MiB) peaking at 100..500 MiB, with lower
    samples around each peak; one confirmed and one suspected OOM."""
    boxes, samples = [], []
    for n in range(1, 6):
        sandbox_id = f"s{n}"
        boxes.append(
            sandbox(
                sandbox_id,
                template_id="small",
                memory_mb=512,
                started_at=at(n),
                metadata={"agent": "odd" if n % 2 else "even", "team.name": f"t{n}"},
            )
        )
        peak = n * 100 * MIB
        samples += [
            sample(sandbox_id, 10, mem_used_bytes=peak // 2, cpu_used_pct=n * 10.0),
            sample(sandbox_id, 15, mem_used_bytes=peak, disk_used_bytes=n * GIB),
            sample(sandbox_id, 20, mem_used_bytes=peak - MIB, cpu_used_pct=5.0),
        ]
    store.upsert_sandboxes(boxes)
    store.add_samples(samples)
    store.add_incidents(
        [_incident("s5", 30, "oom_confirmed"), _incident("s4", 30, "oom_suspected")]
    )


def test_fit_per_template_exact(store: MonitorStore) -> None:
    _fill_small_template(store)
    # Another template with a sandbox never sampled, and one started before the range.
    store.upsert_sandboxes(
        [
            sandbox("b1", template_id="big", memory_mb=2048, started_at=at(2)),
            sandbox("old", template_id="small", started_at=at(-600)),
        ]
    )
    store.add_samples([sample("old", -590, mem_used_bytes=GIB)])

    got = store.template_fit(T0, at(3600)).set_index("group_value")
    assert list(got.reset_index().columns) == list(FIT_COLUMNS)
    small = got.loc["small"]
    assert small["sandboxes"] == 5 and small["sandboxes_sampled"] == 5
    assert small["memory_mb"] == 512
    # Peaks 100..500 MiB: p50 the middle one, p95 at 3.8 of 4 steps, p99 at 3.96.
    assert small["mem_peak_p50_bytes"] == 300 * MIB
    assert small["mem_peak_p95_bytes"] == pytest.approx(480 * MIB)
    assert small["mem_peak_p99_bytes"] == pytest.approx(496 * MIB)
    assert small["mem_peak_max_bytes"] == 500 * MIB
    assert small["headroom_bytes"] == pytest.approx(32 * MIB)
    assert small["oom_incidents"] == 1  # the suspected one does not count
    assert small["ooms_per_100_sandboxes"] == 20.0
    # CPU peaks 10..50 %: p95 = 40 + 0.8 x 10; disk peaks 1..5 GiB likewise.
    assert small["cpu_peak_p95_pct"] == pytest.approx(48.0)
    assert small["disk_peak_p95_bytes"] == pytest.approx(4.8 * GIB)
    big = got.loc["big"]
    assert big["sandboxes"] == 1 and big["sandboxes_sampled"] == 0
    assert pd_isna(big["mem_peak_p95_bytes"]) and big["oom_incidents"] == 0


def pd_isna(value: object) -> bool:
    return value != value  # NaN is the one float not equal to itself


def test_fit_grouped_by_a_metadata_key(store: MonitorStore) -> None:
    _fill_small_template(store)
    store.upsert_sandboxes([sandbox("nokey", template_id="small", started_at=at(3), metadata={})])
    got = store.template_fit(T0, at(3600), group_key="agent").set_index("group_value")
    assert list(got.index) == ["odd", "even"]  # most sandboxes first; no key: left out
    assert got.loc["even", "sandboxes"] == 2  # s2, s4
    assert got.loc["even", "mem_peak_max_bytes"] == 400 * MIB
    assert got.loc["odd", "mem_peak_p50_bytes"] == 300 * MIB  # 100, 300, 500
    assert got.loc["odd", "ooms_per_100_sandboxes"] == pytest.approx(100 / 3)
    # A key with a dot is a name, not a JSON path.
    dotted = store.template_fit(T0, at(3600), group_key="team.name")
    assert dotted["group_value"].tolist() == ["t1", "t2", "t3", "t4", "t5"]
    assert store.metadata_keys(T0, at(3600)) == ["agent", "team.name"]


def test_usage_hours_and_cost_inside_the_range(store: MonitorStore) -> None:
    store.upsert_sandboxes(
        [
            sandbox("a", template_id="t", cpu_count=2, memory_mb=1024, started_at=T0),
            sandbox(
                "b", template_id="t", cpu_count=4, memory_mb=2048, started_at=at(1800), seen_s=7200
            ),
            sandbox(
                "c", template_id="u", cpu_count=1, memory_mb=512, started_at=at(-3600), seen_s=600
            ),
            sandbox("gone", template_id="t", started_at=at(-7200), seen_s=-3600),
        ]
    )
    store.mark_ended([SandboxEndRow("a", at(1800), at(1800), "killed")])
    got = store.template_usage(T0, at(3600), cost_per_vcpu_hour=0.05, cost_per_gib_hour=0.02)
    assert list(got.columns) == list(USAGE_COLUMNS)
    rows = got.set_index("group_value")
    # a: 0.5 h x 2 vCPU, 0.5 h x 1 GiB; b: clipped to 0.5 h x 4 vCPU, 0.5 h x 2 GiB.
    assert rows.loc["t", "sandboxes"] == 2
    assert rows.loc["t", "vcpu_hours"] == pytest.approx(3.0)
    assert rows.loc["t", "gib_hours"] == pytest.approx(1.5)
    assert rows.loc["t", "cost"] == pytest.approx(3.0 * 0.05 + 1.5 * 0.02)
    # c: alive from before the range until last seen 600 s in.
    assert rows.loc["u", "vcpu_hours"] == pytest.approx(600 / 3600)
    assert rows.loc["u", "gib_hours"] == pytest.approx(0.5 * 600 / 3600)


def test_fit_refuses_naive_times(store: MonitorStore) -> None:
    with pytest.raises(ValueError):
        store.template_fit(T0.replace(tzinfo=None), at(10))


def test_fit_reads_peaks_from_the_rollup_once_raw_samples_are_gone(store: MonitorStore) -> None:
    _fill_small_template(store)
    store.roll_up(at(3 * 86400))
    store.forget_old(at(3 * 86400), raw_days=1, rollup_days=30)
    got = store.template_fit(T0, at(3600)).set_index("group_value")
    assert got.loc["small", "mem_peak_max_bytes"] == 500 * MIB
    assert got.loc["small", "mem_peak_p95_bytes"] == pytest.approx(480 * MIB)


def test_fit_reads_raw_samples_past_the_rollup(store: MonitorStore) -> None:
    _fill_small_template(store)
    store.roll_up(at(120))
    store.add_samples([sample("s1", 125, mem_used_bytes=600 * MIB)])  # not rolled up yet
    got = store.template_fit(T0, at(3600)).set_index("group_value")
    assert got.loc["small", "mem_peak_max_bytes"] == 600 * MIB
    assert got.loc["small", "mem_peak_p50_bytes"] == 400 * MIB  # peaks 200..600 now


def test_only_the_biggest_groups_are_returned(store: MonitorStore) -> None:
    _fill_small_template(store)
    got = store.template_fit(T0, at(3600), group_key="agent", max_groups=1)
    assert got["group_value"].tolist() == ["odd"]
    tied = store.template_fit(T0, at(3600), group_key="team.name", max_groups=2)
    assert tied["group_value"].tolist() == ["t1", "t2"]  # a tie: by name
    store.upsert_sandboxes([sandbox(f"u{n}", template_id=f"u{n % 2}", seen_s=60) for n in range(3)])
    usage = store.template_usage(T0, at(3600), 1.0, 1.0, max_groups=1)
    assert usage["group_value"].tolist() == ["u0"]  # u0 has two sandboxes, u1 one
    with pytest.raises(ValueError, match="limit"):
        store.template_fit(T0, at(3600), max_groups=-1)
