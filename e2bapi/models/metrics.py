"""Sandbox and team metrics. Gauges are bytes or percent; times are UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from e2bapi.models.base import ApiModel

TeamMaxMetricName = Literal["concurrent_sandboxes", "sandbox_start_rate"]


class SandboxMetric(ApiModel):
    """One 5-second sample of a sandbox. `cpu_used_pct` is 0-100 across all its vCPUs."""

    timestamp: datetime
    timestamp_unix: int
    cpu_count: int
    cpu_used_pct: float
    mem_used_bytes: int = Field(alias="memUsed")
    mem_total_bytes: int = Field(alias="memTotal")
    mem_cache_bytes: int = Field(alias="memCache")
    disk_used_bytes: int = Field(alias="diskUsed")
    disk_total_bytes: int = Field(alias="diskTotal")


class SandboxesWithMetrics(ApiModel):
    """Answer of `GET /sandboxes/metrics`: the latest sample per sandbox ID."""

    sandboxes: dict[str, SandboxMetric]


class TeamMetric(ApiModel):
    """One bucket of team usage: peak concurrency and sandboxes started per second."""

    timestamp: datetime
    timestamp_unix: int
    concurrent_sandboxes: int
    sandbox_start_rate: float


class MaxTeamMetric(ApiModel):
    """The peak of one team metric over a range, and when it happened."""

    timestamp: datetime
    timestamp_unix: int
    value: float
