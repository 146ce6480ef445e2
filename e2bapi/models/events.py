"""Sandbox lifecycle events (spec: e2b-events-webhooks-openapi.yml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from e2bapi.models.base import ApiModel


class SandboxEvent(ApiModel):
    """A lifecycle event: `sandbox.lifecycle.created`, `.updated`, `.paused`, `.resumed`,
    `.killed`. `type` stays a plain string: new event types must not break the client."""

    id: str
    version: str
    type: str
    event_category: str | None = None
    event_label: str | None = None
    event_data: dict[str, Any] | None = None
    timestamp: datetime
    sandbox_id: str
    sandbox_execution_id: str
    sandbox_template_id: str
    sandbox_build_id: str
    sandbox_team_id: str
