from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.incidents.report import (
    IncidentReport,
    build_report,
    export_csv_zip,
    export_json,
    incident_key,
    incident_window,
    parse_incident_key,
    suggested_memory_mb,
)

AT = datetime(2025, 5, 1, 12, 3, 5, 123456, tzinfo=UTC)
MIB = 2**20
OOM_LINE = "log line: OOM kill: python3 (pid 12) killed, memory limit 128 MiB"


def confirmed(**over: object) -> dict[str, object]:
    incident: dict[str, object] = {
        "sandbox_id": "ia1",
        "kind": "oom_confirmed",
        "occurred_at": pd.Timestamp(AT),
        "detected_at": pd.Timestamp(AT + timedelta(seconds=4)),
        "process": "python3",
        "pid": 12,
        "mem_used_bytes": math.nan,
        "mem_total_bytes": 128 * MIB,
        "evidence": OOM_LINE,
        "template_id": "small",
        "alias": None,
    }
    incident.update(over)
    return incident


def series(
    start: datetime, step_s: int, used_mib: list[float], limit_mib: int = 128
) -> pd.DataFrame:
    """sandbox_series-shaped frame: one bucket every `step_s` s from `start`."""
    times = [start + timedelta(seconds=step_s * i) for i in range(len(used_mib))]
    return pd.DataFrame(
        {
            "bucket_start": pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]"),
            "samples": 1,
            "cpu_count": 1,
            "cpu_used_pct": 50.0,
            "mem_used_bytes": [int(u * MIB) for u in used_mib],
            "mem_total_bytes": limit_mib * MIB,
            "mem_cache_bytes": 0,
            "disk_used_bytes": 10 * MIB,
            "disk_total_bytes": 1024 * MIB,
        }
    )


def growing_series() -> pd.DataFrame:
    # 0.5 MiB/s for 3 min up to 127 MiB at the kill (AT), then freed (the process is gone).
    start = AT - timedelta(seconds=180)
    used = [37 + 2.5 * i for i in range(37)] + [2.0, 2.0]
    return series(start, 5, used)


def test_window_around_the_incident() -> None:
    assert incident_window(AT) == (AT - timedelta(minutes=10), AT + timedelta(minutes=2))
    assert incident_window(AT, 60, 30) == (AT - timedelta(seconds=60), AT + timedelta(seconds=30))


@pytest.mark.parametrize(
    ("peak_mib", "size_mb"),
    [(100, 128), (102.4, 128), (103, 256), (127, 256), (800, 1024), (6553, 8192)],
)
def test_suggested_size_is_the_smallest_with_a_quarter_headroom(
    peak_mib: float, size_mb: int
) -> None:
    assert suggested_memory_mb(int(peak_mib * MIB)) == size_mb


def test_no_suggestion_beyond_the_largest_size_or_without_peak() -> None:
    assert suggested_memory_mb(7000 * MIB) is None
    assert suggested_memory_mb(None) is None
    assert suggested_memory_mb(0) is None


def test_report_of_a_confirmed_kill() -> None:
    report = build_report(confirmed(), growing_series())
    assert report.sandbox_id == "ia1"
    assert report.kind == "oom_confirmed"
    assert report.at == AT
    assert (report.process, report.pid) == ("python3", 12)
    assert report.limit_bytes == 128 * MIB
    # The peak before the kill, not the freed memory after it.
    assert report.peak_bytes == 127 * MIB
    assert report.growth_bytes_per_s is not None
    assert report.growth_bytes_per_s == pytest.approx(MIB / 2)
    assert report.suggested_memory_mb == 256
    assert report.summary.startswith(
        "In sandbox ia1, python3 (pid 12) was killed by the OOM killer at 2025-05-01 12:03:05 UTC "
        f"({OOM_LINE})."
    )
    assert (
        "Memory peaked at 127 MiB of its 128 MiB limit, growing by 512 KiB/s over the 2 minutes"
        in report.summary
    )
    assert "Suggested memory size: 256 MiB (the limit it hit plus 25 % headroom)." in report.summary


def test_growth_is_taken_over_the_two_minutes_before() -> None:
    # Flat for 8 min, then +1 MiB/s for the last 2 min.
    start = AT - timedelta(minutes=10)
    used = [10.0] * 96 + [10.0 + 5 * i for i in range(1, 25)]
    report = build_report(confirmed(), series(start, 5, used))
    assert report.growth_bytes_per_s == pytest.approx(MIB, rel=0.01)


def test_report_of_a_suspected_oom_takes_numbers_from_the_incident() -> None:
    incident = confirmed(
        kind="oom_suspected",
        process=None,
        pid=math.nan,
        mem_used_bytes=500 * MIB,
        mem_total_bytes=512 * MIB,
        evidence="memory 98 % of 512 MiB at 12:03:05, then 3 % at 12:03:10",
    )
    report = build_report(incident, series(AT - timedelta(minutes=1), 5, [100.0, 200.0], 512))
    assert report.pid is None and report.process is None
    assert report.limit_bytes == 512 * MIB
    assert report.peak_bytes == 500 * MIB
    assert report.suggested_memory_mb == 1024
    assert report.summary.startswith(
        "Sandbox ia1 probably ran out of memory at 2025-05-01 12:03:05 UTC"
    )
    assert "suspected from its metrics" in report.summary
    assert "Suggested memory size: 1 GiB (the peak plus 25 % headroom)." in report.summary


def test_report_without_samples_says_no_size_can_be_suggested() -> None:
    report = build_report(confirmed(mem_total_bytes=None), pd.DataFrame())
    assert report.peak_bytes is None
    assert report.limit_bytes is None
    assert report.growth_bytes_per_s is None
    assert report.suggested_memory_mb is None
    assert "no size can be suggested" in report.summary


def test_report_limit_from_the_series_when_the_incident_has_none() -> None:
    report = build_report(confirmed(mem_total_bytes=None), growing_series())
    assert report.limit_bytes == 128 * MIB


def test_report_refuses_an_incident_without_sandbox_or_time() -> None:
    with pytest.raises(ValueError, match="sandbox_id and a time"):
        build_report(confirmed(occurred_at=None), growing_series())
    with pytest.raises(ValueError, match="sandbox_id and a time"):
        build_report(confirmed(sandbox_id=""), growing_series())


def test_incident_key_round_trips_to_the_millisecond() -> None:
    key = incident_key(confirmed())
    assert key == f"ia1@{int(AT.replace(microsecond=123000).timestamp() * 1000)}"
    sandbox_id, at = parse_incident_key(key)
    assert sandbox_id == "ia1"
    assert at == AT.replace(microsecond=123000)
    assert at.tzinfo is UTC


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "ia1",
        "@1714564985123",
        "ia1@",
        "ia1@abc",
        "ia1@-5",
        "ia1@1.5",
        "ia1@99999999999999999999",
        "ia1@١٢",
    ],
)
def test_junk_incident_keys_are_refused(junk: str) -> None:
    with pytest.raises(ValueError, match="not an incident key"):
        parse_incident_key(junk)


def bundle_parts() -> tuple[IncidentReport, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    metrics = series(AT - timedelta(seconds=10), 5, [120.0, 127.0, 2.0])
    events = pd.DataFrame(
        {
            "ts": pd.to_datetime([AT], utc=True).astype("datetime64[us, UTC]"),
            "event_id": ["e1"],
            "sandbox_id": ["ia1"],
            "type": ["sandbox.lifecycle.killed"],
            "team_id": ["team"],
            "kill_reason": ["oom"],
            "event_data_json": ['{"kill_reason":"oom"}'],
        }
    )
    logs = pd.DataFrame(
        {
            "ts": pd.to_datetime([AT - timedelta(seconds=1), AT], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "level": ["info", "error"],
            "message": ["allocating, 120 MiB", "OOM kill: python3 (pid 12) killed"],
            "fields_json": ["{}", '{"pid": "12"}'],
        }
    )
    return build_report(confirmed(), metrics), metrics, events, logs


def test_json_export_holds_everything_with_iso_utc_times() -> None:
    report, metrics, events, logs = bundle_parts()
    bundle = json.loads(export_json(report, metrics, events, logs))
    assert set(bundle) == {"report", "metrics", "events", "logs"}
    assert bundle["report"]["at"] == "2025-05-01T12:03:05.123456+00:00"
    assert bundle["report"]["suggested_memory_mb"] == 256
    assert bundle["report"]["summary"] == report.summary
    assert [m["mem_used_bytes"] for m in bundle["metrics"]] == [120 * MIB, 127 * MIB, 2 * MIB]
    assert bundle["metrics"][0]["bucket_start"] == "2025-05-01T12:02:55.123456+00:00"
    assert bundle["events"][0]["kill_reason"] == "oom"
    assert bundle["events"][0]["ts"] == "2025-05-01T12:03:05.123456+00:00"
    assert [line["message"] for line in bundle["logs"]] == [
        "allocating, 120 MiB",
        "OOM kill: python3 (pid 12) killed",
    ]


def test_json_export_writes_missing_values_as_null() -> None:
    report, metrics, events, logs = bundle_parts()
    metrics.loc[1, "cpu_used_pct"] = math.nan
    events.loc[0, "kill_reason"] = None
    bundle = json.loads(export_json(report, metrics, events, logs))
    assert bundle["metrics"][1]["cpu_used_pct"] is None
    assert bundle["events"][0]["kill_reason"] is None


def test_json_export_of_empty_frames() -> None:
    report, *_ = bundle_parts()
    empty = pd.DataFrame()
    bundle = json.loads(export_json(report, empty, empty, empty))
    assert bundle["metrics"] == bundle["events"] == bundle["logs"] == []
    assert bundle["report"]["sandbox_id"] == "ia1"


def read_zip(data: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {
            name: list(csv.DictReader(io.StringIO(bundle.read(name).decode())))
            for name in bundle.namelist()
        }


def test_csv_zip_holds_four_files_with_iso_utc_times() -> None:
    report, metrics, events, logs = bundle_parts()
    files = read_zip(export_csv_zip(report, metrics, events, logs))
    assert sorted(files) == ["events.csv", "logs.csv", "metrics.csv", "report.csv"]
    (row,) = files["report.csv"]
    assert row["sandbox_id"] == "ia1"
    assert row["at"] == "2025-05-01T12:03:05.123456+00:00"
    assert row["suggested_memory_mb"] == "256"
    assert row["summary"] == report.summary
    assert [m["mem_used_bytes"] for m in files["metrics.csv"]] == [
        str(127 * MIB - 7 * MIB),
        str(127 * MIB),
        str(2 * MIB),
    ]
    assert files["metrics.csv"][2]["bucket_start"] == "2025-05-01T12:03:05.123456+00:00"
    assert files["events.csv"][0]["event_data_json"] == '{"kill_reason":"oom"}'
    # A comma inside a message survives the CSV quoting.
    assert files["logs.csv"][0]["message"] == "allocating, 120 MiB"


def test_csv_zip_of_empty_frames_keeps_their_headers() -> None:
    report, metrics, events, _ = bundle_parts()
    data = export_csv_zip(report, metrics.iloc[0:0], events.iloc[0:0], pd.DataFrame())
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert bundle.read("metrics.csv").decode().splitlines() == [",".join(metrics.columns)]
        assert bundle.read("events.csv").decode().splitlines() == [",".join(events.columns)]
        assert bundle.read("logs.csv").decode() == "\n"


def test_a_confirmed_kill_suggests_more_than_the_limit_it_hit() -> None:
    # The samples saw 60 MiB, but the kernel killed at 128 MiB: the need reached the limit.
    report = build_report(confirmed(), series(AT - timedelta(seconds=20), 5, [50.0, 60.0]))
    assert report.peak_bytes == 60 * MIB
    assert report.suggested_memory_mb == 256
    assert "Suggested memory size: 256 MiB (the limit it hit plus 25 % headroom)." in report.summary
    # A suspected one only has the samples to go by.
    suspected = build_report(
        confirmed(kind="oom_suspected"), series(AT - timedelta(seconds=20), 5, [50.0, 60.0])
    )
    assert suspected.suggested_memory_mb == 128
