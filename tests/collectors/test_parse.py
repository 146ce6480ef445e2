"""Parsers and OOM detection on payloads recorded from a real sandboxd (record_payloads.py).

No network, no database: each test decodes a recorded answer into e2bapi's models, as the
client does, and checks the rows the collectors would hand to the store.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from collectors import oom, parse
from e2bapi.models.events import SandboxEvent
from e2bapi.models.logs import SandboxLogsV2Response
from e2bapi.models.metrics import MaxTeamMetric, SandboxesWithMetrics, SandboxMetric, TeamMetric
from e2bapi.models.sandboxes import ListedSandbox
from e2bapi.models.templates import Template
from e2bapi.models.webhooks import WebhookDetail
from storage.rows import LogLineRow, SampleRow, SandboxRow
from tests.e2bapi import payloads as spec_payloads

PAYLOADS = Path(__file__).resolve().parent / "payloads"
SCENE: dict[str, str] = json.loads((PAYLOADS / "scene.json").read_text())
NOW = datetime(2026, 11, 26, 22, 5, tzinfo=UTC)
MIB = 2**20


def recorded(name: str, type_: Any) -> Any:
    """A recorded answer, decoded as the client decodes it."""
    return TypeAdapter(type_).validate_json((PAYLOADS / f"{name}.json").read_bytes())


def listed() -> list[ListedSandbox]:
    result: list[ListedSandbox] = recorded("list_sandboxes", list[ListedSandbox])
    return result


def test_listed_sandboxes_become_rows_with_their_details() -> None:
    rows = {row.sandbox_id: row for row in parse.sandbox_rows(listed(), NOW)}

    assert set(rows) == {SCENE[name] for name in ("running", "bomb", "hog", "paused")}
    running = rows[SCENE["running"]]
    assert running.template_id == "base" and running.alias == "base"
    assert running.state == "running"
    assert (running.cpu_count, running.memory_mb, running.disk_size_mb) == (2, 512, 1024)
    assert running.metadata == {"owner": "recorder"}
    assert running.started_at == datetime(2026, 11, 26, 22, 4, 12, 972154, tzinfo=UTC)
    assert running.started_at.tzinfo is UTC and running.last_seen_at == NOW
    assert rows[SCENE["paused"]].state == "paused"
    assert rows[SCENE["bomb"]].memory_mb == 128


def test_batch_metrics_become_samples_stamped_with_the_api_time() -> None:
    answer: SandboxesWithMetrics = recorded("batch_metrics", SandboxesWithMetrics)

    rows = {row.sandbox_id: row for row in parse.latest_sample_rows(answer.sandboxes)}

    assert "nosuchid" not in rows  # the API leaves out IDs without data
    bomb = rows[SCENE["bomb"]]
    assert bomb.ts == datetime.fromtimestamp(1795730659, UTC)
    assert bomb.mem_total_bytes == 128 * MIB
    assert bomb.mem_used_bytes == 9740288 and bomb.mem_cache_bytes == 57344
    assert bomb.disk_total_bytes == 61576192 and bomb.cpu_count == 1
    assert bomb.cpu_used_pct == 0.0


def test_history_keeps_one_row_per_second_with_each_maximum() -> None:
    history: list[SandboxMetric] = recorded("sandbox_metrics_hog", list[SandboxMetric])

    rows = parse.history_rows(SCENE["hog"], history)

    # The recording is from a sandboxd that still sampled every 0.5 s: two samples per
    # whole second.
    assert len(history) == 13 and len(rows) == 7
    assert [row.ts for row in rows] == sorted({row.ts for row in rows})
    first_second = [m for m in history if m.timestamp_unix == history[0].timestamp_unix]
    assert rows[0].mem_used_bytes == max(m.mem_used_bytes for m in first_second)


def test_team_metrics_one_row_per_bucket_time() -> None:
    buckets: list[TeamMetric] = recorded("team_metrics", list[TeamMetric])

    rows = parse.team_sample_rows(buckets)

    assert len({row.ts for row in rows}) == len(rows)
    assert max(row.concurrent_sandboxes for row in rows) == 5
    assert max(row.sandbox_start_rate for row in rows) == 10.0


def test_team_maximum_becomes_a_row_for_its_window() -> None:
    peak: MaxTeamMetric = recorded("team_max_concurrent", MaxTeamMetric)

    row = parse.team_max_row("concurrent_sandboxes", "1h", peak, NOW)

    assert (row.metric, row.window, row.value) == ("concurrent_sandboxes", "1h", 5)
    assert row.peak_at == datetime.fromtimestamp(1795730653, UTC)
    assert row.observed_at == NOW


def test_events_carry_their_kill_reason_and_data() -> None:
    events: list[SandboxEvent] = recorded("team_events", list[SandboxEvent])

    rows = parse.event_rows([*events, events[0]])  # a repeat across pages is kept once

    assert len(rows) == len(events)
    assert [row.ts for row in rows] == sorted(row.ts for row in rows)
    killed = [row for row in rows if row.type == parse.KILLED_EVENT]
    assert [(row.sandbox_id, row.kill_reason) for row in killed] == [
        (SCENE["killed"], "killed by API")
    ]
    assert json.loads(killed[0].event_data_json)["execution"]["memory_mb"] == 512
    assert all(row.kill_reason is None for row in rows if row.type != parse.KILLED_EVENT)
    assert {row.team_id for row in rows} == {events[0].sandbox_team_id}


def test_log_entries_become_lines_oldest_first_once_each() -> None:
    logs: SandboxLogsV2Response = recorded("logs_bomb", SandboxLogsV2Response)

    rows = parse.log_line_rows(SCENE["bomb"], [*reversed(logs.logs), logs.logs[0]])

    assert len(rows) == 4
    assert [row.level for row in rows] == ["info", "info", "error", "warn"]
    assert json.loads(rows[2].fields_json)["process"] == "python3"


def test_an_oom_line_in_the_logs_is_a_confirmed_incident() -> None:
    logs: SandboxLogsV2Response = recorded("logs_bomb", SandboxLogsV2Response)
    lines = parse.log_line_rows(SCENE["bomb"], logs.logs)

    incidents = oom.confirmed_from_logs(lines, NOW)

    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.kind == "oom_confirmed" and incident.sandbox_id == SCENE["bomb"]
    assert incident.process == "python3" and incident.pid == 23652
    assert incident.mem_total_bytes == 128 * MIB
    assert incident.occurred_at == lines[2].ts and incident.detected_at == NOW
    assert incident.evidence == "sandboxd kernel OOM record, memory limit 128 MiB"


def test_ordinary_logs_hold_no_oom() -> None:
    logs: SandboxLogsV2Response = recorded("logs_running", SandboxLogsV2Response)

    assert oom.confirmed_from_logs(parse.log_line_rows(SCENE["running"], logs.logs), NOW) == []


@pytest.mark.parametrize(
    "message",
    [
        "Out of memory: Killed process 4819 (python3) total-vm:812kB, anon-rss:130012kB",
        "Memory cgroup out of memory: Killed process 77 (node) total-vm:1kB",
        "oom-kill:constraint=CONSTRAINT_MEMCG,task=java,pid=312,uid=1000",
        "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0",
        "Killed process 12 (bash)",
        "OOM kill: python3 (pid 12) killed, memory limit 512 MiB",
        "OOM kill: ![x](http://127.0.0.1:9/x.png) (pid 7) killed",
    ],
)
def test_oom_words_in_a_line_prove_nothing(message: str) -> None:
    # A process prints these, or is named after them: words are never evidence, whatever
    # the fields say besides the kernel record's mark.
    fields = {"process": "python3", "pid": "12", "memory_limit_bytes": str(512 * MIB)}
    line = LogLineRow("x", NOW, "error", message, json.dumps(fields))

    assert oom.kernel_oom_record(fields) is None
    assert oom.confirmed_from_logs([line], NOW) == []


@pytest.mark.parametrize("mark", ["Kernel_OOM", "kernel_oom ", "oom", ""])
def test_only_the_exact_kernel_record_mark_counts(mark: str) -> None:
    assert oom.kernel_oom_record({"record": mark, "process": "x", "pid": "1"}) is None


def test_a_kernel_record_names_what_its_fields_say() -> None:
    found = oom.kernel_oom_record(
        {"record": "kernel_oom", "process": "n" * 100, "pid": "?", "memory_limit_bytes": "1x"}
    )

    assert found == oom.OomRecord("n" * oom.PROCESS_NAME_MAX_CHARS, None, None)


def test_a_killed_event_with_reason_oom_is_a_confirmed_incident() -> None:
    events: list[SandboxEvent] = recorded("team_events", list[SandboxEvent])
    rows = parse.event_rows(events)
    killed = next(row for row in rows if row.kill_reason is not None)

    assert oom.confirmed_from_events(rows, NOW) == []  # killed by API: no OOM
    incidents = oom.confirmed_from_events([replace(killed, kill_reason="oom")], NOW)

    assert [(i.sandbox_id, i.kind, i.occurred_at) for i in incidents] == [
        (SCENE["killed"], "oom_confirmed", killed.ts)
    ]


def hog_samples() -> list[SampleRow]:
    history: list[SandboxMetric] = recorded("sandbox_metrics_hog", list[SandboxMetric])
    return parse.history_rows(SCENE["hog"], history)


def test_memory_near_its_limit_then_a_drop_is_a_suspected_oom() -> None:
    samples = hog_samples()

    incidents = oom.suspected_from_samples(samples, None, NOW)

    assert len(incidents) == 1
    incident = incidents[0]
    last_high = [s for s in samples if oom.is_memory_high(s)][-1]
    assert incident.kind == "oom_suspected" and incident.occurred_at == last_high.ts
    assert incident.mem_used_bytes == last_high.mem_used_bytes
    assert incident.mem_total_bytes == 128 * MIB
    assert "97 %" in incident.evidence


def test_memory_near_its_limit_at_the_end_is_a_suspected_oom() -> None:
    samples = [s for s in hog_samples() if s.mem_used_bytes > 64 * MIB]  # stop while high
    ended_at = samples[-1].ts + timedelta(seconds=2)

    assert oom.suspected_from_samples(samples, None, NOW) == []
    incidents = oom.suspected_from_samples(samples, ended_at, NOW)

    assert [i.occurred_at for i in incidents] == [samples[-1].ts]
    assert "ended" in incidents[0].evidence


def test_no_suspicion_without_high_memory() -> None:
    history: list[SandboxMetric] = recorded("sandbox_metrics_bomb", list[SandboxMetric])
    samples = parse.history_rows(SCENE["bomb"], history)

    # The bomb grew and died between two samples: only its log line tells.
    assert not any(oom.is_memory_high(s) for s in samples)
    assert oom.suspected_from_samples(samples, samples[-1].ts, NOW) == []


def test_a_confirmed_kill_hides_its_suspected_twin() -> None:
    suspected = oom.suspected_from_samples(hog_samples(), None, NOW)
    first_at = suspected[0].occurred_at
    near = replace(suspected[0], kind="oom_confirmed", occurred_at=first_at + timedelta(seconds=3))
    far = replace(near, occurred_at=first_at + timedelta(minutes=5))
    other = replace(near, sandbox_id="another")

    assert oom.without_confirmed_twins(suspected, [near]) == []
    assert oom.without_confirmed_twins(suspected, [far, other]) == suspected


def last_known(end_at: datetime) -> SandboxRow:
    row = parse.sandbox_rows(listed(), NOW - timedelta(seconds=5))[0]
    return replace(row, end_at=end_at)


def test_an_end_takes_the_reason_and_time_of_the_killed_event() -> None:
    events: list[SandboxEvent] = recorded("team_events", list[SandboxEvent])
    killed = next(e for e in events if e.type == parse.KILLED_EVENT)
    row = last_known(NOW + timedelta(minutes=5))

    from_model = parse.end_row(row, killed, NOW)
    from_row = parse.end_row(row, parse.event_rows([killed])[0], NOW)

    assert from_model == from_row
    assert from_model.end_reason == "killed by API"
    assert from_model.ended_at == killed.timestamp
    assert from_model.last_seen_at == row.last_seen_at


def test_an_end_past_its_end_time_without_an_event_is_a_timeout() -> None:
    row = last_known(NOW - timedelta(seconds=1))

    end = parse.end_row(row, None, NOW)

    assert (end.end_reason, end.ended_at) == ("timeout", row.end_at)


def test_an_early_end_without_an_event_has_no_reason() -> None:
    end = parse.end_row(last_known(NOW + timedelta(minutes=1)), None, NOW)

    assert (end.end_reason, end.ended_at) == (None, None)


def test_snapshots_keep_the_wire_names() -> None:
    templates = [Template.model_validate(spec_payloads.template())]
    webhooks = [WebhookDetail.model_validate(spec_payloads.webhook_detail())]

    assert json.loads(parse.snapshot_json(templates))[0]["templateID"] == "rki5dems9wqfm4r03t7g"
    assert "createdAt" in json.loads(parse.snapshot_json(webhooks))[0]


def test_naive_api_times_are_taken_as_utc() -> None:
    naive = datetime(2026, 11, 26, 22, 0)

    assert parse.utc(naive) == naive.replace(tzinfo=UTC)
    assert parse.utc(datetime(2026, 11, 26, 23, 0, tzinfo=timezone(timedelta(hours=1)))).hour == 22


def test_a_line_whose_fields_are_not_json_is_no_record() -> None:
    line = LogLineRow("x", NOW, "error", "OOM kill: a process (pid ?) killed", "not json")

    assert oom.confirmed_from_logs([line], NOW) == []
