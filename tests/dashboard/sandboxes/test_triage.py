from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.sandboxes.triage import (
    COLUMNS,
    TriageFilter,
    apply_filter,
    empty_table_text,
    is_filtering,
    level_of,
    metadata_text,
    project_time_to_limit_s,
    triage_table,
)

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
MIB = 2**20
NAN = math.nan


def row(sandbox_id: str, **over: object) -> dict[str, object]:
    """One triage_rows row: a running 512 MiB / 1 GiB sandbox at 25 % memory, 10 % disk."""
    base: dict[str, object] = {
        "sandbox_id": sandbox_id,
        "template_id": "base",
        "alias": None,
        "state": "running",
        "cpu_count": 2,
        "memory_mb": 512,
        "disk_size_mb": 1024,
        "started_at": NOW - timedelta(minutes=10),
        "end_at": NOW + timedelta(minutes=5),
        "first_seen_at": NOW - timedelta(minutes=10),
        "last_seen_at": NOW,
        "ended": False,
        "ended_at": None,
        "end_reason": None,
        "metadata_json": "{}",
        "last_sample_at": NOW - timedelta(seconds=5),
        "cpu_used_pct": 10.0,
        "mem_used_bytes": 128 * MIB,
        "mem_total_bytes": 512 * MIB,
        "mem_cache_bytes": 10 * MIB,
        "disk_used_bytes": 100 * MIB,
        "disk_total_bytes": 1000 * MIB,
        "peak_mem_used_bytes": 200 * MIB,
        "mem_slope_bytes_per_s": NAN,
        "disk_slope_bytes_per_s": NAN,
    }
    base.update(over)
    return base


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    for column in (
        "started_at",
        "end_at",
        "first_seen_at",
        "last_seen_at",
        "ended_at",
        "last_sample_at",
    ):
        df[column] = pd.to_datetime(df[column], utc=True).astype("datetime64[us, UTC]")
    return df


def test_projection_is_linear_from_the_slope() -> None:
    assert project_time_to_limit_s(100.0, 500.0, 4.0) == 100.0
    assert project_time_to_limit_s(600.0, 500.0, 4.0) == 0.0


@pytest.mark.parametrize(
    ("used", "limit", "slope"),
    [
        (100.0, 500.0, 0.0),
        (100.0, 500.0, -2.0),
        (100.0, 500.0, NAN),
        (NAN, 500.0, 1.0),
        (1.0, 0.0, 1.0),
    ],
)
def test_no_projection_when_not_growing_or_unknown(used: float, limit: float, slope: float) -> None:
    assert project_time_to_limit_s(used, limit, slope) is None


def test_table_columns_and_values() -> None:
    rows = frame(
        row(
            "ia1",
            alias="py",
            metadata_json=json.dumps({"team": "ml", "demo": "memory"}),
            mem_slope_bytes_per_s=float(4 * MIB),
            disk_slope_bytes_per_s=0.0,
        )
    )
    table = triage_table(rows, NOW)
    assert list(table.columns) == COLUMNS
    got = table.iloc[0]
    assert got["sandbox_id"] == "ia1"
    assert got["template"] == "base"
    assert got["alias"] == "py"
    assert got["metadata"] == "demo=memory, team=ml"
    assert got["age_s"] == 600.0
    assert got["time_left_s"] == 300.0
    assert got["mem_limit_bytes"] == 512 * MIB
    assert got["mem_pct"] == 25.0
    assert got["disk_pct"] == 10.0
    assert got["peak_mem_bytes"] == 200 * MIB
    # (512 - 128) MiB at 4 MiB/s: 96 s to the limit.
    assert got["oom_in_s"] == 96.0
    assert math.isnan(got["disk_full_in_s"])
    assert got["level"] == "ok"


def test_levels_mark_70_and_90_percent_of_any_limit() -> None:
    rows = frame(
        row("ok", mem_used_bytes=300 * MIB),
        row("mem-warn", mem_used_bytes=360 * MIB),
        row("disk-critical", disk_used_bytes=950 * MIB),
        row("cpu-warn", cpu_used_pct=75.0),
        row("mem-critical", mem_used_bytes=470 * MIB),
    )
    table = triage_table(rows, NOW)
    levels = dict(zip(table["sandbox_id"], table["level"], strict=True))
    assert levels == {
        "ok": "ok",
        "mem-warn": "warn",
        "disk-critical": "critical",
        "cpu-warn": "warn",
        "mem-critical": "critical",
    }
    # Hottest first: critical (by memory %), then warn (by memory %), then ok.
    assert table["sandbox_id"].tolist() == [
        "mem-critical",
        "disk-critical",
        "mem-warn",
        "cpu-warn",
        "ok",
    ]


def test_level_of_ignores_unknown_values() -> None:
    assert level_of(None, NAN, 50.0) == "ok"
    assert level_of(70.0, None, None) == "warn"
    assert level_of(NAN, 90.0, 10.0) == "critical"


def test_paused_and_ended_sandboxes_have_no_time_left_nor_projection() -> None:
    rows = frame(
        row("paused", state="paused", end_at=NOW - timedelta(minutes=1), mem_slope_bytes_per_s=1e6),
        row("gone", ended=True, ended_at=NOW - timedelta(minutes=1), mem_slope_bytes_per_s=1e6),
        row("late", end_at=NOW - timedelta(seconds=30)),
    )
    table = triage_table(rows, NOW).set_index("sandbox_id")
    assert math.isnan(table.loc["paused", "time_left_s"])
    assert math.isnan(table.loc["paused", "oom_in_s"])
    assert math.isnan(table.loc["gone", "time_left_s"])
    assert math.isnan(table.loc["gone", "oom_in_s"])
    assert table.loc["gone", "state"] == "ended"
    # Past its end but still listed: no negative time left.
    assert table.loc["late", "time_left_s"] == 0.0


def test_sandbox_without_samples_uses_its_configured_size() -> None:
    rows = frame(
        row(
            "new",
            cpu_used_pct=NAN,
            mem_used_bytes=NAN,
            mem_total_bytes=NAN,
            disk_used_bytes=NAN,
            disk_total_bytes=NAN,
            peak_mem_used_bytes=NAN,
            last_sample_at=None,
        )
    )
    got = triage_table(rows, NOW).iloc[0]
    assert got["mem_limit_bytes"] == 512 * MIB
    assert got["disk_limit_bytes"] == 1024 * MIB
    assert math.isnan(got["mem_pct"])
    assert got["level"] == "ok"


def test_empty_input_gives_an_empty_table_with_the_columns() -> None:
    table = triage_table(pd.DataFrame(), NOW)
    assert table.empty
    assert list(table.columns) == COLUMNS
    assert apply_filter(table, TriageFilter(text="x")).empty


def test_metadata_text_copes_with_junk() -> None:
    assert metadata_text('{"b": "2", "a": "1"}') == "a=1, b=2"
    for junk in ("", "not json", "[1, 2]", None, NAN):
        assert metadata_text(junk) == ""


@pytest.fixture
def table() -> pd.DataFrame:
    rows = frame(
        row("ia1", template_id="base", alias="Py", metadata_json='{"demo": "cpu", "team": "ml"}'),
        row("ib2", template_id="small", state="paused", metadata_json='{"demo": "memory"}'),
        row("ic3", template_id="small", metadata_json='{"team": "mlops", "note": "a, b"}'),
    )
    return triage_table(rows, NOW)


def ids(filtered: pd.DataFrame) -> list[str]:
    return sorted(filtered["sandbox_id"])


def test_filter_by_state_and_template(table: pd.DataFrame) -> None:
    assert ids(apply_filter(table, TriageFilter(states=["paused"]))) == ["ib2"]
    assert ids(apply_filter(table, TriageFilter(templates=["small"]))) == ["ib2", "ic3"]
    both = TriageFilter(states=["running"], templates=["small"])
    assert ids(apply_filter(table, both)) == ["ic3"]
    assert ids(apply_filter(table, TriageFilter())) == ["ia1", "ib2", "ic3"]


def test_filter_by_metadata_matches_whole_items(table: pd.DataFrame) -> None:
    assert ids(apply_filter(table, TriageFilter(metadata="team=ml"))) == ["ia1"]
    assert ids(apply_filter(table, TriageFilter(metadata=" Team = MLOPS "))) == ["ic3"]
    assert ids(apply_filter(table, TriageFilter(metadata="team"))) == ["ia1", "ic3"]
    assert ids(apply_filter(table, TriageFilter(metadata="note=a, b"))) == ["ic3"]
    assert ids(apply_filter(table, TriageFilter(metadata="demo=gpu"))) == []


def test_text_search_is_case_insensitive_over_id_alias_template_metadata(
    table: pd.DataFrame,
) -> None:
    assert ids(apply_filter(table, TriageFilter(text="IB2"))) == ["ib2"]
    assert ids(apply_filter(table, TriageFilter(text="py"))) == ["ia1"]
    assert ids(apply_filter(table, TriageFilter(text="SMALL"))) == ["ib2", "ic3"]
    assert ids(apply_filter(table, TriageFilter(text="memory"))) == ["ib2"]
    # Taken literally, not as a regular expression.
    assert ids(apply_filter(table, TriageFilter(text="i.2"))) == []


def test_filter_keeps_the_order(table: pd.DataFrame) -> None:
    hot = triage_table(
        frame(
            row("cool"), row("hot", mem_used_bytes=500 * MIB), row("warm", mem_used_bytes=400 * MIB)
        ),
        NOW,
    )
    assert apply_filter(hot, TriageFilter(states=["running"]))["sandbox_id"].tolist() == [
        "hot",
        "warm",
        "cool",
    ]


def test_text_search_does_not_match_across_columns(table: pd.DataFrame) -> None:
    assert ids(apply_filter(table, TriageFilter(text="ia1 py"))) == []


def test_an_empty_table_says_whether_the_filters_or_the_fleet_are_empty() -> None:
    assert empty_table_text(TriageFilter()) == "No sandboxes yet."
    assert empty_table_text(TriageFilter(metadata="  ", text=" ")) == "No sandboxes yet."
    for narrowed in (
        TriageFilter(templates=["base"]),
        TriageFilter(metadata="team=a"),
        TriageFilter(states=["paused"]),
        TriageFilter(text="abc"),
    ):
        assert is_filtering(narrowed)
        assert empty_table_text(narrowed).startswith("No sandbox matches the filters")
