"""Lifecycle events as E2B's events API shows them (camelCase, `eventData` as E2B gives it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sandboxd.records import SandboxRecord, iso

EVENT_VERSION = "v1"
CREATED = "sandbox.lifecycle.created"
UPDATED = "sandbox.lifecycle.updated"
PAUSED = "sandbox.lifecycle.paused"
RESUMED = "sandbox.lifecycle.resumed"
KILLED = "sandbox.lifecycle.killed"


def lifecycle_event(
    record: SandboxRecord, event_type: str, at: datetime, team_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """One event of `record`'s sandbox."""
    return {
        "id": str(uuid.uuid4()),
        "version": EVENT_VERSION,
        "type": event_type,
        "eventCategory": "lifecycle",
        "eventLabel": event_type.rsplit(".", 1)[-1],
        "eventData": data or None,
        "timestamp": iso(at),
        "sandboxId": record.sandbox_id,
        "sandboxExecutionId": record.execution_id,
        "sandboxTemplateId": record.template_id,
        "sandboxBuildId": record.build_id,
        "sandboxTeamId": team_id,
    }


def execution(record: SandboxRecord, at: datetime) -> dict[str, Any]:
    """The `execution` block of paused and killed events."""
    return {
        "started_at": iso(record.started_at),
        "vcpu_count": record.cpu_count,
        "memory_mb": record.memory_mb,
        "execution_time": int((at - record.started_at).total_seconds() * 1000),
    }
