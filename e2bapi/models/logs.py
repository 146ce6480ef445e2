"""Sandbox logs (`GET /v2/sandboxes/{sandboxID}/logs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from e2bapi.models.base import ApiModel

LogLevel = Literal["debug", "info", "warn", "error"]
LogsDirection = Literal["forward", "backward"]


class SandboxLogEntry(ApiModel):
    """One structured log line of a sandbox."""

    timestamp: datetime
    level: LogLevel
    message: str
    fields: dict[str, str]


class SandboxLogsV2Response(ApiModel):
    """Answer of the v2 logs call."""

    logs: list[SandboxLogEntry] = Field(default_factory=list)
