"""What sandboxd keeps of a built template, its builds and their layers (JSON in the store).

Times are RFC 3339 text in UTC (`records.iso`), as the API answers them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

BuildStatus = Literal["waiting", "building", "ready", "error"]
RUNNING_STATUSES: tuple[BuildStatus, ...] = ("waiting", "building")


@dataclass
class TemplateEntry:
    """A template made with `POST /v3/templates`. `tags` maps a tag to its build and the
    time it was set; the sandbox limits are those of the template's latest request."""

    template_id: str
    name: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    created_at: str
    updated_at: str
    public: bool = False
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TemplateEntry:
        return cls(**data)


@dataclass
class StepState:
    """What later steps and the template's sandboxes inherit besides files."""

    envs: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # "" is the sandbox user's home, wherever the box has it
    user: str = "user"


@dataclass
class BuildEntry:
    """One build of a template: its request, where it got, and what it made."""

    build_id: str
    template_id: str
    status: BuildStatus
    created_at: str
    updated_at: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    finished_at: str | None = None
    # The start request (`POST /v2/templates/{id}/builds/{buildID}`) once it came.
    request: dict[str, Any] | None = None
    reason: dict[str, Any] | None = None  # BuildStatusReason of a failed build
    layer_key: str | None = None  # the last step's layer, once ready
    state: StepState = field(default_factory=StepState)
    start_cmd: str | None = None
    ready_cmd: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildEntry:
        data = dict(data)
        data["state"] = StepState(**data.get("state", {}))
        return cls(**data)


@dataclass
class LayerEntry:
    """The result of one step: the build box's home as a tar (`home_tar`, a file name in
    the layers directory; None: an empty home) and the state after the step. `layer_key`
    hashes the parent layer's key with the step (type, args, files hash)."""

    layer_key: str
    template_id: str
    home_tar: str | None
    state: StepState
    size_bytes: int = 0
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerEntry:
        data = dict(data)
        data["state"] = StepState(**data["state"])
        return cls(**data)
