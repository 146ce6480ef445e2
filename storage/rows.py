"""The rows collectors hand to the store: one dataclass per kind, times timezone-aware UTC.

Collectors build these from API payloads (pure functions in `collectors.parse`); the store
writes them in bulk. Sizes are bytes, CPU is percent of the sandbox's vCPUs (0-100).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

JobName = str
IncidentKind = Literal["oom_confirmed", "oom_suspected"]
TeamMaxWindow = Literal["1h", "24h", "7d"]
TeamMaxMetric = Literal["concurrent_sandboxes", "sandbox_start_rate"]


@dataclass(frozen=True)
class SandboxRow:
    """A sandbox's current details, as the list call gave them at `last_seen_at`."""

    sandbox_id: str
    template_id: str
    alias: str | None
    state: Literal["running", "paused"]
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    started_at: datetime
    end_at: datetime
    metadata: dict[str, str]
    last_seen_at: datetime


@dataclass(frozen=True)
class SampleRow:
    """One metric sample of a sandbox, stamped with the API's sample time (`timestampUnix`)."""

    sandbox_id: str
    ts: datetime
    cpu_count: int
    cpu_used_pct: float
    mem_used_bytes: int
    mem_total_bytes: int
    mem_cache_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class TeamSampleRow:
    """One bucket of team usage."""

    ts: datetime
    concurrent_sandboxes: int
    sandbox_start_rate: float


@dataclass(frozen=True)
class TeamMaxRow:
    """The peak of a team metric over a window ending at `observed_at`."""

    metric: TeamMaxMetric
    window: TeamMaxWindow
    observed_at: datetime
    peak_at: datetime
    value: float


@dataclass(frozen=True)
class EventRow:
    """A lifecycle event, kept once by `event_id`. `event_data` is the API's JSON, as text."""

    event_id: str
    sandbox_id: str
    type: str
    ts: datetime
    team_id: str
    kill_reason: str | None
    event_data_json: str


@dataclass(frozen=True)
class LogLineRow:
    """A sandbox log line kept around an incident; kept once by (sandbox, ts, message)."""

    sandbox_id: str
    ts: datetime
    level: str
    message: str
    fields_json: str


@dataclass(frozen=True)
class IncidentRow:
    """An OOM kill: confirmed (logs or a killed event with kill_reason oom) or suspected
    (memory near its limit, then a drop or an end). Kept once by (sandbox, kind, occurred_at)."""

    sandbox_id: str
    kind: IncidentKind
    occurred_at: datetime
    detected_at: datetime
    process: str | None
    pid: int | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    evidence: str


@dataclass(frozen=True)
class SandboxEndRow:
    """A sandbox that left the list: when it was last seen and why it ended, if known."""

    sandbox_id: str
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None  # the killed event's kill_reason, "timeout", "paused", or None


@dataclass(frozen=True)
class CollectorRun:
    """One run of a job: when, how many rows it wrote, and its error if it failed."""

    job: JobName
    started_at: datetime
    ended_at: datetime
    rows_written: int
    error: str | None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class TemplateRow:
    """A template as `GET /v2/templates` listed it at `listed_at`. Names and aliases are
    the API's text (its creator chose them): shown as text, never as Markdown."""

    template_id: str
    build_id: str
    names: list[str]
    aliases: list[str]
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    public: bool
    build_count: int
    build_status: str
    spawn_count: int
    last_spawned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    envd_version: str
    listed_at: datetime
