"""From a create request to a sandbox's record and its box: templates, limits, checks."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandboxd.isolation.base import BoxSpec
from sandboxd.isolation.egress import Egress, EgressRuleError, parse_egress
from sandboxd.problems import ApiProblem
from sandboxd.records import SandboxRecord
from sandboxd.templates import (
    MAX_CPU_COUNT,
    MAX_DISK_MB,
    MAX_MEMORY_MB,
    MIN_DISK_MB,
    MIN_MEMORY_MB,
    Template,
)


@dataclass(frozen=True)
class CreateRequest:
    """What `POST /sandboxes` asks for. The limits are sandboxd's extension to the body."""

    template: str
    timeout_s: int = 15
    auto_pause: bool = False
    secure: bool = False
    allow_internet_access: bool | None = None
    # `network.allowOut` / `network.denyOut`: CIDR blocks or addresses (isolation/egress.py)
    allow_out: tuple[str, ...] = ()
    deny_out: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    cpu_count: int | None = None
    memory_mb: int | None = None
    disk_size_mb: int | None = None


def plan_sandbox(
    request: CreateRequest,
    template: Template | None,
    sandbox_id: str,
    now: datetime,
    isolation_note: str,
    max_processes: int,
) -> tuple[SandboxRecord, BoxSpec]:
    """The record and box spec for `request` from `template` (what its name found, None
    when nothing); ApiProblem 400 for an unknown template or a limit out of range. The
    template gives every limit the request leaves out."""
    if template is None:
        raise ApiProblem(400, f"template '{request.template}' not found")
    cpu_count = _in_range("cpuCount", request.cpu_count, template.cpu_count, 1, MAX_CPU_COUNT)
    memory_mb = _in_range(
        "memoryMB", request.memory_mb, template.memory_mb, MIN_MEMORY_MB, MAX_MEMORY_MB
    )
    disk_mb = _in_range(
        "diskSizeMB", request.disk_size_mb, template.disk_size_mb, MIN_DISK_MB, MAX_DISK_MB
    )
    record = SandboxRecord(
        sandbox_id=sandbox_id,
        template_id=template.template_id,
        alias=template.alias,
        build_id=template.build_id,
        cpu_count=cpu_count,
        memory_mb=memory_mb,
        disk_size_mb=disk_mb,
        started_at=now,
        end_at=now + timedelta(seconds=request.timeout_s),
        metadata=dict(request.metadata),
        auto_pause=request.auto_pause,
        secure=request.secure,
        # Always: `secure: false` (the v1 create's default) once meant "envd open to anyone
        # who can reach the port", which on a shared host is every local user.
        access_token=secrets.token_hex(16),
        allow_internet_access=request.allow_internet_access,
        execution_id=str(uuid.uuid4()),
        isolation=isolation_note,
    )
    spec = BoxSpec(
        sandbox_id=sandbox_id,
        cpu_count=cpu_count,
        memory_mb=memory_mb,
        disk_size_mb=disk_mb,
        max_processes=max_processes,
        env_vars=dict(request.env_vars),
        egress=_egress(request),
    )
    return record, spec


def _egress(request: CreateRequest) -> Egress:
    try:
        return parse_egress(request.allow_internet_access, request.allow_out, request.deny_out)
    except EgressRuleError as bad:
        raise ApiProblem(400, str(bad)) from None


def _in_range(name: str, asked: int | None, default: int, lowest: int, highest: int) -> int:
    if asked is None:
        return default
    if not lowest <= asked <= highest:
        raise ApiProblem(400, f"{name} must be between {lowest} and {highest}, got {asked}")
    return asked
