"""API payloads (e2bapi models) into storage rows. Pure: no I/O, the clock is a parameter.

Every time in a row is timezone-aware UTC. Sample times are the API's `timestampUnix`
(whole seconds), never the time of the fetch. OOM detection lives in `collectors.oom`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from e2bapi.models.events import SandboxEvent
from e2bapi.models.logs import SandboxLogEntry
from e2bapi.models.metrics import MaxTeamMetric, SandboxMetric, TeamMetric
from e2bapi.models.sandboxes import ListedSandbox
from storage import SandboxRecord
from storage.rows import (
    EventRow,
    LogLineRow,
    SampleRow,
    SandboxEndRow,
    SandboxRow,
    TeamMaxMetric,
    TeamMaxRow,
    TeamMaxWindow,
    TeamSampleRow,
)

KILLED_EVENT = "sandbox.lifecycle.killed"
# The end reason of a sandbox that left the list after its end time, with no killed event.
TIMEOUT_REASON = "timeout"
# A killed event that names no reason still says the sandbox was killed.
KILLED_REASON = "killed"


def utc(when: datetime) -> datetime:
    """`when` in UTC; a naive time is taken to be UTC already (the API's times are)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def from_unix_s(seconds: int) -> datetime:
    """A Unix time in seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def sandbox_rows(listed: Iterable[ListedSandbox], seen_at: datetime) -> list[SandboxRow]:
    """The current details of each listed sandbox, as seen at `seen_at` (UTC)."""
    return [
        SandboxRow(
            sandbox_id=sandbox.sandbox_id,
            template_id=sandbox.template_id,
            alias=sandbox.alias,
            state=sandbox.state,
            cpu_count=sandbox.cpu_count,
            memory_mb=sandbox.memory_mb,
            disk_size_mb=sandbox.disk_size_mb,
            started_at=utc(sandbox.started_at),
            end_at=utc(sandbox.end_at),
            metadata=dict(sandbox.metadata or {}),
            last_seen_at=utc(seen_at),
        )
        for sandbox in listed
    ]


def sample_row(sandbox_id: str, metric: SandboxMetric) -> SampleRow:
    """One sample, stamped with the API's sample time."""
    return SampleRow(
        sandbox_id=sandbox_id,
        ts=from_unix_s(metric.timestamp_unix),
        cpu_count=metric.cpu_count,
        cpu_used_pct=metric.cpu_used_pct,
        mem_used_bytes=metric.mem_used_bytes,
        mem_total_bytes=metric.mem_total_bytes,
        mem_cache_bytes=metric.mem_cache_bytes,
        disk_used_bytes=metric.disk_used_bytes,
        disk_total_bytes=metric.disk_total_bytes,
    )


def latest_sample_rows(latest: Mapping[str, SandboxMetric]) -> list[SampleRow]:
    """Rows from the batch call's answer (the latest sample per sandbox ID)."""
    return [sample_row(sandbox_id, metric) for sandbox_id, metric in latest.items()]


def history_rows(sandbox_id: str, history: Sequence[SandboxMetric]) -> list[SampleRow]:
    """Rows from one sandbox's history, oldest first, one per sample time.

    Two samples can share a `timestampUnix` (the API stamps whole seconds; a runtime that
    samples faster than once a second sends both, as the recorded `hog` payload shows): they
    become one row holding each gauge's maximum, as the API's own buckets do.
    """
    rows: dict[datetime, SampleRow] = {}
    for metric in history:
        row = sample_row(sandbox_id, metric)
        kept = rows.get(row.ts)
        rows[row.ts] = row if kept is None else _max_sample(kept, row)
    return [rows[ts] for ts in sorted(rows)]


def _max_sample(a: SampleRow, b: SampleRow) -> SampleRow:
    return SampleRow(
        sandbox_id=a.sandbox_id,
        ts=a.ts,
        cpu_count=max(a.cpu_count, b.cpu_count),
        cpu_used_pct=max(a.cpu_used_pct, b.cpu_used_pct),
        mem_used_bytes=max(a.mem_used_bytes, b.mem_used_bytes),
        mem_total_bytes=max(a.mem_total_bytes, b.mem_total_bytes),
        mem_cache_bytes=max(a.mem_cache_bytes, b.mem_cache_bytes),
        disk_used_bytes=max(a.disk_used_bytes, b.disk_used_bytes),
        disk_total_bytes=max(a.disk_total_bytes, b.disk_total_bytes),
    )


def team_sample_rows(buckets: Iterable[TeamMetric]) -> list[TeamSampleRow]:
    """One row per bucket time, oldest first; buckets sharing a time keep each maximum."""
    rows: dict[datetime, TeamSampleRow] = {}
    for bucket in buckets:
        ts = from_unix_s(bucket.timestamp_unix)
        kept = rows.get(ts)
        concurrent = bucket.concurrent_sandboxes
        start_rate = bucket.sandbox_start_rate
        if kept is not None:
            concurrent = max(concurrent, kept.concurrent_sandboxes)
            start_rate = max(start_rate, kept.sandbox_start_rate)
        rows[ts] = TeamSampleRow(ts, concurrent, start_rate)
    return [rows[ts] for ts in sorted(rows)]


def team_max_row(
    metric: TeamMaxMetric, window: TeamMaxWindow, peak: MaxTeamMetric, observed_at: datetime
) -> TeamMaxRow:
    """The peak of `metric` over the `window` ending at `observed_at` (UTC).

    With no data the API answers 0 at "now"; that row is kept as it is (a peak of 0).
    """
    return TeamMaxRow(
        metric=metric,
        window=window,
        observed_at=utc(observed_at),
        peak_at=from_unix_s(peak.timestamp_unix),
        value=peak.value,
    )


def kill_reason(event: SandboxEvent) -> str | None:
    """The `kill_reason` in a killed event's `eventData` (None for other events)."""
    if event.type != KILLED_EVENT:
        return None
    reason = (event.event_data or {}).get("kill_reason")
    return reason if isinstance(reason, str) and reason else KILLED_REASON


def event_rows(events: Iterable[SandboxEvent]) -> list[EventRow]:
    """One row per distinct event ID, oldest first; `eventData` kept as JSON text."""
    rows: dict[str, EventRow] = {}
    for event in events:
        rows.setdefault(
            event.id,
            EventRow(
                event_id=event.id,
                sandbox_id=event.sandbox_id,
                type=event.type,
                ts=utc(event.timestamp),
                team_id=event.sandbox_team_id,
                kill_reason=kill_reason(event),
                event_data_json=_json_text(event.event_data or {}),
            ),
        )
    return sorted(rows.values(), key=lambda row: (row.ts, row.event_id))


def log_line_rows(sandbox_id: str, entries: Iterable[SandboxLogEntry]) -> list[LogLineRow]:
    """One row per distinct (time, message) line, oldest first (backward pages come newest
    first; the same line can come in two overlapping pages)."""
    rows: dict[tuple[datetime, str], LogLineRow] = {}
    for entry in entries:
        ts = utc(entry.timestamp)
        rows.setdefault(
            (ts, entry.message),
            LogLineRow(sandbox_id, ts, entry.level, entry.message, _json_text(entry.fields)),
        )
    return [rows[key] for key in sorted(rows)]


def end_row(
    last_known: SandboxRow | SandboxRecord, killed: EventRow | SandboxEvent | None, now: datetime
) -> SandboxEndRow:
    """Why and when a sandbox that left the list ended.

    The killed event's reason and time when there is one; else "timeout" at its end time
    when that time had passed by `now` (UTC); else unknown (None, None).
    """
    if killed is not None:
        if isinstance(killed, SandboxEvent):
            reason, at = kill_reason(killed), utc(killed.timestamp)
        else:
            reason, at = killed.kill_reason, killed.ts
        return SandboxEndRow(last_known.sandbox_id, last_known.last_seen_at, at, reason)
    if utc(last_known.end_at) <= utc(now):
        return SandboxEndRow(
            last_known.sandbox_id, last_known.last_seen_at, utc(last_known.end_at), TIMEOUT_REASON
        )
    return SandboxEndRow(last_known.sandbox_id, last_known.last_seen_at, None, None)


def snapshot_json(items: Sequence[Any]) -> str:
    """A list of API models as the JSON text the API sent (wire names), for a snapshot."""
    return _json_text([item.to_wire() for item in items])


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
