"""Sandboxes: creating, describing and listing them (spec: e2b-api-openapi.yml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from e2bapi.models.base import ApiModel, RequestModel

SandboxState = Literal["running", "paused"]
OnTimeout = Literal["kill", "pause"]


class VolumeMount(ApiModel):
    """A volume mounted into a sandbox."""

    name: str
    path: str


class AutoResumeConfig(RequestModel):
    """Whether traffic resumes a paused sandbox by itself."""

    enabled: bool


class Lifecycle(ApiModel):
    """What happens at the end of a sandbox's life."""

    auto_resume: bool
    on_timeout: OnTimeout


class NewSandbox(RequestModel):
    """Body of `POST /sandboxes`."""

    template_id: str = Field(alias="templateID")
    timeout_s: int | None = Field(default=None, alias="timeout", ge=0)
    auto_pause: bool | None = None
    auto_pause_memory: bool | None = None
    auto_resume: AutoResumeConfig | None = None
    secure: bool | None = None
    # The one snake_case name on the wire (docs/E2B-API.md, "Wire names").
    allow_internet_access: bool | None = Field(default=None, alias="allow_internet_access")
    network: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    env_vars: dict[str, str] | None = None
    mcp: dict[str, Any] | None = None
    iam: dict[str, Any] | None = None
    volume_mounts: list[VolumeMount] | None = None


class Sandbox(ApiModel):
    """A sandbox as `POST /sandboxes` and `/connect` describe it."""

    template_id: str = Field(alias="templateID")
    sandbox_id: str = Field(alias="sandboxID")
    alias: str | None = None
    client_id: str = Field(alias="clientID")
    envd_version: str
    envd_access_token: str | None = None
    traffic_access_token: str | None = None
    domain: str | None = None


class ConnectResult(ApiModel):
    """A connected sandbox, and whether connecting resumed it (201) or it was running (200)."""

    sandbox: Sandbox
    resumed: bool


class ListedSandbox(ApiModel):
    """A sandbox as `GET /v2/sandboxes` lists it."""

    template_id: str = Field(alias="templateID")
    alias: str | None = None
    sandbox_id: str = Field(alias="sandboxID")
    client_id: str = Field(alias="clientID")
    started_at: datetime
    end_at: datetime
    cpu_count: int = Field(ge=1)
    memory_mb: int = Field(alias="memoryMB")
    disk_size_mb: int = Field(alias="diskSizeMB")
    metadata: dict[str, str] | None = None
    state: SandboxState
    envd_version: str
    volume_mounts: list[VolumeMount] | None = None


class SandboxDetail(ListedSandbox):
    """A sandbox as `GET /sandboxes/{sandboxID}` describes it."""

    envd_access_token: str | None = None
    allow_internet_access: bool | None = None
    domain: str | None = None
    network: dict[str, Any] | None = None
    lifecycle: Lifecycle | None = None
