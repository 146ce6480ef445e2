from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.sandbox.verdict import sandbox_verdict
from storage import SandboxRecord

NOW = datetime(2025, 5, 1, 12, 10, 0, tzinfo=UTC)
ENDED_AT = datetime(2025, 5, 1, 12, 3, 5, tzinfo=UTC)
MIB = 2**20
KILLED = "sandbox.lifecycle.killed"
EVENT_COLUMNS = [
    "ts",
    "event_id",
    "sandbox_id",
    "type",
    "team_id",
    "kill_reason",
    "event_data_json",
]
INCIDENT_COLUMNS = ["sandbox_id", "kind", "occurred_at", "detected_at", "process", "pid"]
INCIDENT_COLUMNS += ["mem_used_bytes", "mem_total_bytes", "evidence"]


def record(**over: object) -> SandboxRecord:
    base: dict[str, object] = {
        "sandbox_id": "ia1",
        "template_id": "small",
        "alias": None,
        "state": "running",
        "cpu_count": 1,
        "memory_mb": 512,
        "disk_size_mb": 1024,
        "started_at": NOW - timedelta(minutes=30),
        "end_at": NOW + timedelta(minutes=4, seconds=10),
        "metadata_json": "{}",
        "first_seen_at": NOW - timedelta(minutes=30),
        "last_seen_at": NOW - timedelta(seconds=3),
        "ended": False,
        "ended_at": None,
        "end_reason": None,
    }
    base.update(over)
    return SandboxRecord(**base)  # type: ignore[arg-type]


def ended(reason: str | None, **over: object) -> SandboxRecord:
    fields: dict[str, object] = {
        "ended": True,
        "ended_at": ENDED_AT if reason else None,
        "end_reason": reason,
        "last_seen_at": ENDED_AT - timedelta(seconds=2),
    }
    fields.update(over)
    return record(**fields)


def events(*rows: tuple[datetime, str, str | None, dict[str, object]]) -> pd.DataFrame:
    df = pd.DataFrame(
        [
            (ts, f"e{i}", "ia1", kind, "team", reason, json.dumps(data))
            for i, (ts, kind, reason, data) in enumerate(rows)
        ],
        columns=EVENT_COLUMNS,
    )
    df["ts"] = pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]")
    return df


def incidents(*rows: tuple[str, datetime, str | None, int | None, str]) -> pd.DataFrame:
    df = pd.DataFrame(
        [
            ("ia1", kind, at, NOW, process, pid, None, 128 * MIB, evidence)
            for kind, at, process, pid, evidence in rows
        ],
        columns=INCIDENT_COLUMNS,
    )
    for column in ("occurred_at", "detected_at"):
        df[column] = pd.to_datetime(df[column], utc=True).astype("datetime64[us, UTC]")
    return df


NO_EVENTS = events()
NO_INCIDENTS = incidents()
OOM_LINE = "log line: OOM kill: python3 (pid 12) killed, memory limit 128 MiB"


def test_running_says_time_left() -> None:
    verdict = sandbox_verdict(record(), NO_EVENTS, NO_INCIDENTS, NOW)
    assert verdict.kind == "running"
    assert verdict.headline == "Still running, 4 min left before timeout"
    assert verdict.at is None
    assert "scheduled end (timeout) at 12:14:10 UTC" in verdict.evidence
    assert "last listed at 12:09:57 UTC" in verdict.evidence


def test_running_past_its_end_says_so() -> None:
    verdict = sandbox_verdict(
        record(end_at=NOW - timedelta(minutes=1)), NO_EVENTS, NO_INCIDENTS, NOW
    )
    assert verdict.kind == "running"
    assert "timeout was due at 12:09:00 UTC" in verdict.headline


def test_running_with_a_process_oom_killed_survived_it() -> None:
    found = incidents(("oom_confirmed", NOW - timedelta(minutes=2), "python3", 12, OOM_LINE))
    verdict = sandbox_verdict(record(), NO_EVENTS, found, NOW)
    assert verdict.kind == "running"
    cited = f"confirmed OOM kill of python3 (pid 12) at 12:08:00 UTC: {OOM_LINE}"
    assert f"{cited}; the sandbox kept running" in verdict.evidence


def test_paused_since_its_paused_event() -> None:
    paused_at = NOW - timedelta(minutes=7)
    log = events((paused_at, "sandbox.lifecycle.paused", None, {}))
    verdict = sandbox_verdict(record(state="paused", end_at=paused_at), log, NO_INCIDENTS, NOW)
    assert verdict.kind == "paused"
    assert verdict.headline == "Paused since 12:03:00 UTC"
    assert verdict.evidence[0] == "paused event at 12:03:00 UTC"


def test_paused_without_event_uses_its_end_time() -> None:
    paused_at = NOW - timedelta(minutes=1)
    verdict = sandbox_verdict(
        record(state="paused", end_at=paused_at), NO_EVENTS, NO_INCIDENTS, NOW
    )
    assert verdict.headline == "Paused since 12:09:00 UTC"


def test_oom_kill_cites_the_event_and_the_log_line() -> None:
    log = events((ENDED_AT, KILLED, "oom", {"execution": {"execution_time": 125_000}}))
    found = incidents(("oom_confirmed", ENDED_AT - timedelta(seconds=1), "python3", 12, OOM_LINE))
    verdict = sandbox_verdict(ended("oom"), log, found, NOW)
    assert verdict.kind == "oom"
    assert verdict.headline == "Killed by the kernel's OOM killer at 12:03:05 UTC"
    assert verdict.at == ENDED_AT
    assert verdict.evidence[0] == (
        'killed event at 12:03:05 UTC with kill_reason "oom", after running 2 min'
    )
    assert (
        verdict.evidence[1] == f"confirmed OOM kill of python3 (pid 12) at 12:03:04 UTC: {OOM_LINE}"
    )


@pytest.mark.parametrize(
    ("reason", "kind", "headline"),
    [
        ("timeout", "timeout", "Timed out at 12:03:05 UTC"),
        ("killed by API", "killed", "Killed through the API at 12:03:05 UTC"),
        ("killed", "killed", "Killed at 12:03:05 UTC (the killed event names no reason)"),
        ("sandboxd shutdown", "killed", "Killed at 12:03:05 UTC when the local sandboxd shut down"),
        ("error", "error", "Ended with an error at 12:03:05 UTC: its main process exited"),
        ("evicted", "killed", "Killed at 12:03:05 UTC (reason: evicted)"),
        ("{odd}", "killed", "Killed at 12:03:05 UTC (reason: {odd})"),
    ],
)
def test_each_end_reason(reason: str, kind: str, headline: str) -> None:
    log = events((ENDED_AT, KILLED, reason, {}))
    verdict = sandbox_verdict(ended(reason), log, NO_INCIDENTS, NOW)
    assert verdict.kind == kind
    assert verdict.headline == headline
    assert verdict.evidence[0] == f'killed event at 12:03:05 UTC with kill_reason "{reason}"'


def test_timeout_without_killed_event_says_it_left_the_list() -> None:
    end_at = ENDED_AT
    verdict = sandbox_verdict(ended("timeout", end_at=end_at), NO_EVENTS, NO_INCIDENTS, NOW)
    assert verdict.kind == "timeout"
    assert verdict.evidence[0] == (
        "no killed event; it left the list after its scheduled end (12:03:05 UTC)"
    )


def test_reason_from_the_killed_event_when_the_record_lags() -> None:
    log = events((ENDED_AT, KILLED, "killed by API", {}))
    verdict = sandbox_verdict(ended(None), log, NO_INCIDENTS, NOW)
    assert verdict.kind == "killed"
    assert verdict.at == ENDED_AT


def test_unknown_end() -> None:
    verdict = sandbox_verdict(ended(None), NO_EVENTS, NO_INCIDENTS, NOW)
    assert verdict.kind == "ended_unknown"
    assert verdict.headline == (
        "Ended at an unknown time, for an unknown reason; last listed at 12:03:03 UTC"
    )
    assert verdict.evidence[0] == "no killed event found and no end reason on record"
    assert verdict.at is None


def test_unknown_end_right_after_a_suspected_oom_is_probably_oom() -> None:
    found = incidents(
        ("oom_suspected", ENDED_AT - timedelta(seconds=20), None, None, "memory 97 % of 128 MiB")
    )
    verdict = sandbox_verdict(ended(None), NO_EVENTS, found, NOW)
    assert verdict.kind == "oom"
    assert verdict.headline.startswith("Probably ran out of memory")
    assert "after an OOM at 12:02:45 UTC" in verdict.headline
    assert any("suspected OOM (from metrics) at 12:02:45 UTC" in line for line in verdict.evidence)


def test_error_end_after_a_confirmed_oom_is_oom() -> None:
    found = incidents(
        ("oom_suspected", ENDED_AT - timedelta(seconds=50), None, None, "memory 95 %"),
        ("oom_confirmed", ENDED_AT - timedelta(seconds=10), "node", 7, "log line: Out of memory"),
    )
    log = events((ENDED_AT, KILLED, "error", {}))
    verdict = sandbox_verdict(ended("error"), log, found, NOW)
    assert verdict.kind == "oom"
    assert verdict.headline == (
        "Ran out of memory: ended at 12:03:05 UTC, after an OOM at 12:02:55 UTC "
        "(end reported as an error)"
    )


def test_an_old_oom_does_not_explain_a_later_end() -> None:
    found = incidents(("oom_confirmed", ENDED_AT - timedelta(minutes=5), "python3", 1, OOM_LINE))
    verdict = sandbox_verdict(ended("error"), events((ENDED_AT, KILLED, "error", {})), found, NOW)
    assert verdict.kind == "error"


def test_cites_only_the_newest_incidents_newest_first() -> None:
    found = incidents(
        *[
            ("oom_confirmed", ENDED_AT - timedelta(minutes=m), "p", m, f"line {m}")
            for m in (1, 4, 3, 2)
        ]
    )
    verdict = sandbox_verdict(ended("oom"), NO_EVENTS, found, NOW)
    cited = [line for line in verdict.evidence if line.startswith("confirmed OOM")]
    assert [line.rsplit(" ", 1)[-1] for line in cited] == ["1", "2", "3"]


def test_an_older_day_shows_the_date() -> None:
    verdict = sandbox_verdict(ended("timeout"), NO_EVENTS, NO_INCIDENTS, NOW + timedelta(days=2))
    assert verdict.headline == "Timed out at 2025-05-01 12:03:05 UTC"


def test_paused_with_a_later_end_time_does_not_invent_a_pause_time() -> None:
    verdict = sandbox_verdict(record(state="paused"), NO_EVENTS, NO_INCIDENTS, NOW)
    assert verdict.kind == "paused"
    assert verdict.headline == "Paused"
