"""Answers shaped like E2B's specs (tests/reference_specs.py), for tests and the contract test.

Each function returns a fresh dict or list, so a test may change it freely.
"""

from __future__ import annotations

from typing import Any

TEAM_ID = "9a3c2c9e-6b57-4a55-8f3e-1d2f3a4b5c6d"
SANDBOX_ID = "i3k9x2m7q1w8e4r5t6y0"
BUILD_ID = "5f1b6a5e-0c1d-4e2f-8a9b-0c1d2e3f4a5b"
WEBHOOK_ID = "0b6f4a2c-1d3e-4f5a-8b7c-9d0e1f2a3b4c"


def sandbox() -> dict[str, Any]:
    """`Sandbox`: answer of create and connect."""
    return {
        "templateID": "rki5dems9wqfm4r03t7g",
        "sandboxID": SANDBOX_ID,
        "alias": "base",
        "clientID": "6532622b",
        "envdVersion": "0.6.4",
        "envdAccessToken": "token-abc",
        "domain": None,
    }


def listed_sandbox(sandbox_id: str = SANDBOX_ID, state: str = "running") -> dict[str, Any]:
    """`ListedSandbox`: one item of `GET /v2/sandboxes`."""
    return {
        "templateID": "rki5dems9wqfm4r03t7g",
        "alias": "base",
        "sandboxID": sandbox_id,
        "clientID": "6532622b",
        "startedAt": "2026-11-26T10:00:00Z",
        "endAt": "2026-11-26T10:15:00Z",
        "cpuCount": 2,
        "memoryMB": 512,
        "diskSizeMB": 1024,
        "metadata": {"owner": "ci"},
        "state": state,
        "envdVersion": "0.6.4",
    }


def sandbox_detail(state: str = "running", end_at: str = "2026-11-26T10:15:00Z") -> dict[str, Any]:
    """`SandboxDetail`: answer of `GET /sandboxes/{sandboxID}`."""
    detail = listed_sandbox(state=state)
    detail.update(
        {
            "endAt": end_at,
            "envdAccessToken": "token-abc",
            "allowInternetAccess": None,
            "domain": None,
            "lifecycle": {"autoResume": False, "onTimeout": "kill"},
        }
    )
    return detail


def sandbox_metric(timestamp_unix: int = 1_795_000_000) -> dict[str, Any]:
    """`SandboxMetric`: one 5-second sample."""
    return {
        "timestamp": "2026-11-17T07:06:40Z",
        "timestampUnix": timestamp_unix,
        "cpuCount": 2,
        "cpuUsedPct": 37.5,
        "memUsed": 268_435_456,
        "memTotal": 536_870_912,
        "memCache": 16_777_216,
        "diskUsed": 104_857_600,
        "diskTotal": 1_073_741_824,
    }


def sandboxes_with_metrics(sandbox_ids: list[str]) -> dict[str, Any]:
    """`SandboxesWithMetrics`: answer of the batch metrics call."""
    return {"sandboxes": {sandbox_id: sandbox_metric() for sandbox_id in sandbox_ids}}


def team_metric() -> dict[str, Any]:
    """`TeamMetric`: one bucket of team usage."""
    return {
        "timestamp": "2026-11-26T10:00:00Z",
        "timestampUnix": 1_795_000_000,
        "concurrentSandboxes": 7,
        "sandboxStartRate": 0.2,
    }


def max_team_metric() -> dict[str, Any]:
    """`MaxTeamMetric`: the peak of a team metric."""
    return {"timestamp": "2026-11-26T10:00:00Z", "timestampUnix": 1_795_000_000, "value": 12}


def sandbox_logs() -> dict[str, Any]:
    """`SandboxLogsV2Response`."""
    return {
        "logs": [
            {
                "timestamp": "2026-11-26T10:00:01Z",
                "level": "error",
                "message": "Out of memory: Killed process 4819 (python3)",
                "fields": {"pid": "4819"},
            }
        ]
    }


def sandbox_event(
    event_id: str = "3c6b0f8e-2d4a-4b1c-9e7f-0a1b2c3d4e5f",
    event_type: str = "sandbox.lifecycle.killed",
    timestamp: str = "2026-11-26T10:05:00Z",
) -> dict[str, Any]:
    """`SandboxEvent`: one lifecycle event."""
    return {
        "id": event_id,
        "version": "v1",
        "type": event_type,
        "eventData": {"kill_reason": "timeout"},
        "timestamp": timestamp,
        "sandboxId": SANDBOX_ID,
        "sandboxExecutionId": "b1f0e2d3-4c5b-6a79-8e0f-1a2b3c4d5e6f",
        "sandboxTemplateId": "rki5dems9wqfm4r03t7g",
        "sandboxBuildId": BUILD_ID,
        "sandboxTeamId": TEAM_ID,
    }


def template() -> dict[str, Any]:
    """`Template`: one item of `GET /v2/templates`."""
    return {
        "templateID": "rki5dems9wqfm4r03t7g",
        "buildID": BUILD_ID,
        "cpuCount": 2,
        "memoryMB": 512,
        "diskSizeMB": 1024,
        "public": False,
        "aliases": ["base"],
        "names": ["team-slug/base"],
        "createdAt": "2026-11-01T00:00:00Z",
        "updatedAt": "2026-11-02T00:00:00Z",
        "createdBy": {"id": "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a", "email": None},
        "lastSpawnedAt": None,
        "spawnCount": 3,
        "buildCount": 1,
        "envdVersion": "0.6.4",
        "buildStatus": "ready",
    }


def template_with_builds() -> dict[str, Any]:
    """`TemplateWithBuilds`: answer of `GET /templates/{templateID}`."""
    return {
        "templateID": "rki5dems9wqfm4r03t7g",
        "public": False,
        "aliases": ["base"],
        "names": ["team-slug/base"],
        "createdAt": "2026-11-01T00:00:00Z",
        "updatedAt": "2026-11-02T00:00:00Z",
        "lastSpawnedAt": None,
        "spawnCount": 3,
        "builds": [
            {
                "buildID": BUILD_ID,
                "status": "ready",
                "createdAt": "2026-11-01T00:00:00Z",
                "updatedAt": "2026-11-01T00:02:00Z",
                "finishedAt": "2026-11-01T00:02:00Z",
                "cpuCount": 2,
                "memoryMB": 512,
                "diskSizeMB": 1024,
                "envdVersion": "0.6.4",
            }
        ],
    }


def template_tag() -> dict[str, Any]:
    """`TemplateTag`: one item of `GET /templates/{templateID}/tags`."""
    return {"tag": "v1", "buildID": BUILD_ID, "createdAt": "2026-11-01T00:02:00Z"}


def template_alias_response() -> dict[str, Any]:
    """`TemplateAliasResponse`: answer of `GET /templates/aliases/{alias}`."""
    return {"templateID": "rki5dems9wqfm4r03t7g", "public": False}


def template_request_response_v3() -> dict[str, Any]:
    """`TemplateRequestResponseV3`: answer of `POST /v3/templates`."""
    return {
        "templateID": "rki5dems9wqfm4r03t7g",
        "buildID": BUILD_ID,
        "public": False,
        "aliases": ["my-template"],
        "names": ["team-slug/my-template"],
        "tags": ["v1"],
    }


def template_build_info() -> dict[str, Any]:
    """`TemplateBuildInfo`: answer of the build status call."""
    return {
        "logs": ["step 1/2"],
        "logEntries": [
            {"timestamp": "2026-11-26T10:00:00Z", "message": "step 1/2", "level": "info"}
        ],
        "templateID": "rki5dems9wqfm4r03t7g",
        "buildID": BUILD_ID,
        "status": "building",
    }


def template_build_file_upload() -> dict[str, Any]:
    """`TemplateBuildFileUpload`."""
    return {"present": False, "url": "https://storage.example/upload?sig=abc"}


def template_update_response() -> dict[str, Any]:
    """`TemplateUpdateResponse`."""
    return {"names": ["team-slug/my-template"]}


def webhook_detail() -> dict[str, Any]:
    """`WebhookDetail` (also the shape of `WebhookCreation`)."""
    return {
        "id": WEBHOOK_ID,
        "teamId": TEAM_ID,
        "name": "ops",
        "createdAt": "2026-11-26T10:00:00Z",
        "url": "https://hooks.example/e2b",
        "enabled": True,
        "events": ["sandbox.lifecycle.killed"],
    }


def error(code: int, message: str) -> dict[str, Any]:
    """`Error`: E2B's error body."""
    return {"code": code, "message": message}
