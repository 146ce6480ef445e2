"""A create request becomes a record and a box spec; limits come from the template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandboxd.isolation.base import BoxSpec
from sandboxd.planning import CreateRequest, plan_sandbox
from sandboxd.problems import ApiProblem
from sandboxd.records import SandboxRecord
from sandboxd.templates import TemplateLookup

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BUILT_IN = TemplateLookup()  # no catalog: the built-in templates only


def plan(request: CreateRequest) -> tuple[SandboxRecord, BoxSpec]:
    return plan_sandbox(request, BUILT_IN.find(request.template), "sbx", NOW, "full", 64)


def test_the_template_gives_the_limits_the_request_leaves_out() -> None:
    record, spec = plan(CreateRequest("base", timeout_s=60))
    assert (record.cpu_count, record.memory_mb, record.disk_size_mb) == (2, 512, 1024)
    assert (spec.cpu_count, spec.memory_mb, spec.disk_size_mb, spec.max_processes) == (
        2,
        512,
        1024,
        64,
    )
    assert record.end_at == NOW + timedelta(seconds=60)
    assert record.access_token and len(record.access_token) == 32  # secure or not


def test_request_limits_and_security() -> None:
    request = CreateRequest("small", memory_mb=256, cpu_count=1, secure=True, env_vars={"A": "1"})
    record, spec = plan(request)
    assert (record.memory_mb, spec.memory_mb, spec.env_vars) == (256, 256, {"A": "1"})
    assert record.access_token and len(record.access_token) == 32


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (CreateRequest("nope"), "template 'nope' not found"),
        (CreateRequest("base", memory_mb=64), "memoryMB"),
        (CreateRequest("base", cpu_count=0), "cpuCount"),
        (CreateRequest("base", disk_size_mb=10**6), "diskSizeMB"),
    ],
)
def test_bad_requests_are_400(request_: CreateRequest, text: str) -> None:
    with pytest.raises(ApiProblem) as refused:
        plan(request_)
    assert refused.value.status == 400 and text in refused.value.message
