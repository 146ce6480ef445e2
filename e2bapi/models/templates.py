"""Templates and their builds (spec: e2b-api-openapi.yml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from e2bapi.models.base import ApiModel, RequestModel
from e2bapi.models.logs import LogLevel

TemplateBuildStatus = Literal["building", "waiting", "ready", "error"]


class TeamUser(ApiModel):
    """Who created a template."""

    id: str
    email: str | None = None


class Template(ApiModel):
    """A template as `GET /v2/templates` lists it."""

    template_id: str = Field(alias="templateID")
    build_id: str = Field(alias="buildID")
    cpu_count: int
    memory_mb: int = Field(alias="memoryMB")
    disk_size_mb: int = Field(alias="diskSizeMB")
    public: bool
    aliases: list[str]
    names: list[str]
    created_at: datetime
    updated_at: datetime
    created_by: TeamUser | None
    last_spawned_at: datetime | None
    spawn_count: int
    build_count: int
    envd_version: str
    build_status: TemplateBuildStatus


class TemplateBuild(ApiModel):
    """One build of a template, as `GET /templates/{templateID}` lists it."""

    build_id: str = Field(alias="buildID")
    status: TemplateBuildStatus
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    cpu_count: int
    memory_mb: int = Field(alias="memoryMB")
    disk_size_mb: int | None = Field(default=None, alias="diskSizeMB")
    envd_version: str | None = None


class TemplateWithBuilds(ApiModel):
    """Answer of `GET /templates/{templateID}`: the template and its builds."""

    template_id: str = Field(alias="templateID")
    public: bool
    aliases: list[str]
    names: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    last_spawned_at: datetime | None
    spawn_count: int
    builds: list[TemplateBuild]


class TemplateTag(ApiModel):
    """One tag of a template, as `GET /templates/{templateID}/tags` lists it."""

    tag: str
    build_id: str = Field(alias="buildID")
    created_at: datetime


class TemplateAliasResponse(ApiModel):
    """Answer of `GET /templates/aliases/{alias}`: the template that has the alias."""

    template_id: str = Field(alias="templateID")
    public: bool


class TemplateBuildRequestV3(RequestModel):
    """Body of `POST /v3/templates`."""

    name: str | None = Field(default=None, max_length=128)
    tags: list[str] | None = None
    alias: str | None = Field(default=None, max_length=128)
    team_id: str | None = Field(default=None, alias="teamID")
    cpu_count: int | None = Field(default=None, ge=1)
    memory_mb: int | None = Field(default=None, alias="memoryMB", ge=128)


class TemplateRequestResponseV3(ApiModel):
    """Answer of `POST /v3/templates`: the template and the build to start."""

    template_id: str = Field(alias="templateID")
    build_id: str = Field(alias="buildID")
    public: bool
    aliases: list[str]
    names: list[str]
    tags: list[str]


class TemplateStep(RequestModel):
    """One step of a template build."""

    type: str
    args: list[str] | None = None
    files_hash: str | None = None
    force: bool | None = None


class TemplateBuildStartV2(RequestModel):
    """Body of `POST /v2/templates/{templateID}/builds/{buildID}`."""

    from_image: str | None = None
    from_template: str | None = None
    from_image_registry: dict[str, Any] | None = None
    force: bool | None = None
    steps: list[TemplateStep] | None = None
    start_cmd: str | None = None
    ready_cmd: str | None = None


class TemplateUpdateRequest(RequestModel):
    """Body of `PATCH /v2/templates/{templateID}`."""

    public: bool | None = None


class TemplateUpdateResponse(ApiModel):
    """Answer of `PATCH /v2/templates/{templateID}`."""

    names: list[str]


class TemplateBuildFileUpload(ApiModel):
    """Where to upload a build layer's files; `url` is absent when they are cached."""

    present: bool
    url: str | None = None


class BuildLogEntry(ApiModel):
    """One structured line of a build log."""

    timestamp: datetime
    message: str
    level: LogLevel
    step: str | None = None


class BuildStatusReason(ApiModel):
    """Why a build is where it is (reported for errors)."""

    message: str
    step: str | None = None
    log_entries: list[BuildLogEntry] = Field(default_factory=list)


class TemplateBuildInfo(ApiModel):
    """Answer of the build status call: status and the log lines from `logsOffset` on."""

    logs: list[str] = Field(default_factory=list)
    log_entries: list[BuildLogEntry] = Field(default_factory=list)
    template_id: str = Field(alias="templateID")
    build_id: str = Field(alias="buildID")
    status: TemplateBuildStatus
    reason: BuildStatusReason | None = None
