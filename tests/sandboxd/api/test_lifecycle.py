"""A sandbox's life through the API: create, list, pause, resume, extend, expire, kill."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from e2bapi.models.templates import Template
from sandboxd.testing import RunningSandboxd

WAIT_S = 15.0


def wait_for(check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """Poll `check` until it returns something truthy; fail past the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout_s} s: {check}")


@pytest.fixture
def sandbox(api: httpx.Client) -> Iterator[dict[str, Any]]:
    created = api.post(
        "/sandboxes",
        json={"templateID": "base", "timeout": 120, "metadata": {"suite": "lifecycle"}},
    )
    assert created.status_code == 201, created.text
    yield created.json()
    api.delete(f"/sandboxes/{created.json()['sandboxID']}")


def events_of(api: httpx.Client, sandbox_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/events/sandboxes/{sandbox_id}", params={"orderAsc": "true", "limit": 100})
    assert answer.status_code == 200
    return list(answer.json())


def test_create_answers_every_field_the_sdk_requires(sandbox: dict[str, Any]) -> None:
    assert sandbox["clientID"] == "6532622b"
    assert sandbox["envdVersion"] >= "0.1.0"
    assert sandbox["templateID"] == "base" and len(sandbox["sandboxID"]) == 20


def test_get_and_list_show_the_sandbox(api: httpx.Client, sandbox: dict[str, Any]) -> None:
    sandbox_id = sandbox["sandboxID"]
    detail = api.get(f"/sandboxes/{sandbox_id}").json()
    assert detail["state"] == "running"
    assert (detail["cpuCount"], detail["memoryMB"], detail["diskSizeMB"]) == (2, 512, 1024)
    assert detail["metadata"] == {"suite": "lifecycle"}
    assert "isolation" in detail
    listed = api.get("/v2/sandboxes", params={"metadata": "suite=lifecycle"}).json()
    assert [item["sandboxID"] for item in listed] == [sandbox_id]
    assert api.get("/v2/sandboxes", params={"metadata": "suite=other"}).json() == []
    assert sandbox_id in [item["sandboxID"] for item in api.get("/sandboxes").json()]


def test_listing_pages_with_next_token(api: httpx.Client) -> None:
    ids = [
        api.post("/sandboxes", json={"templateID": "base", "metadata": {"suite": "paging"}}).json()[
            "sandboxID"
        ]
        for _ in range(3)
    ]
    try:
        seen, token, pages = [], None, 0
        while True:
            params: dict[str, str | int] = {"metadata": "suite=paging", "limit": 2}
            if token:
                params["nextToken"] = token
            answer = api.get("/v2/sandboxes", params=params)
            seen += [item["sandboxID"] for item in answer.json()]
            pages += 1
            token = answer.headers.get("X-Next-Token")
            if not token:
                break
        assert pages == 2
        assert sorted(seen) == sorted(ids)
    finally:
        for sandbox_id in ids:
            api.delete(f"/sandboxes/{sandbox_id}")


def test_pause_connect_timeout_refresh_and_kill(
    api: httpx.Client, sandbox: dict[str, Any], sandboxd: RunningSandboxd
) -> None:
    sandbox_id = sandbox["sandboxID"]
    base = f"/sandboxes/{sandbox_id}"
    assert api.post(f"{base}/pause").status_code == 204
    assert api.get(base).json()["state"] == "paused"
    assert api.get("/v2/sandboxes", params={"state": "paused"}).json()[0]["sandboxID"] == sandbox_id
    resumed = api.post(f"{base}/connect", json={"timeout": 60})
    assert resumed.status_code == 201
    assert api.post(f"{base}/connect", json={"timeout": 60}).status_code == 200
    end_before = api.get(base).json()["endAt"]
    assert api.post(f"{base}/connect", json={"timeout": 1}).status_code == 200
    assert api.get(base).json()["endAt"] == end_before  # connect never shortens
    assert api.post(f"{base}/timeout", json={"timeout": 300}).status_code == 204
    assert api.get(base).json()["endAt"] > end_before
    assert api.post(f"{base}/refreshes", json={"duration": 30}).status_code == 204
    assert api.delete(base).status_code == 204
    assert api.get(base).status_code == 404
    kinds = [event["type"].rsplit(".", 1)[1] for event in events_of(api, sandbox_id)]
    assert kinds[:3] == ["created", "paused", "resumed"]
    assert "updated" in kinds and kinds[-1] == "killed"
    killed = events_of(api, sandbox_id)[-1]
    assert killed["eventData"]["kill_reason"] == "killed by API"
    assert killed["sandboxTeamId"] == sandboxd.team_id
    assert set(killed["eventData"]["execution"]) == {
        "started_at",
        "vcpu_count",
        "memory_mb",
        "execution_time",
    }


def test_a_sandbox_past_its_end_is_killed_with_reason_timeout(api: httpx.Client) -> None:
    sandbox_id = api.post("/sandboxes", json={"templateID": "base", "timeout": 1}).json()[
        "sandboxID"
    ]
    wait_for(lambda: api.get(f"/sandboxes/{sandbox_id}").status_code == 404)
    killed = events_of(api, sandbox_id)[-1]
    assert killed["type"] == "sandbox.lifecycle.killed"
    assert killed["eventData"]["kill_reason"] == "timeout"


def test_auto_pause_pauses_instead_of_killing(api: httpx.Client) -> None:
    created = api.post("/sandboxes", json={"templateID": "base", "timeout": 1, "autoPause": True})
    sandbox_id = created.json()["sandboxID"]
    try:
        wait_for(lambda: api.get(f"/sandboxes/{sandbox_id}").json()["state"] == "paused")
    finally:
        api.delete(f"/sandboxes/{sandbox_id}")


def test_samples_arrive_and_stop_while_paused(api: httpx.Client, sandbox: dict[str, Any]) -> None:
    sandbox_id = sandbox["sandboxID"]
    metrics = f"/sandboxes/{sandbox_id}/metrics"
    first = wait_for(lambda: api.get(metrics).json())[0]
    assert first["memTotal"] == 512 * 1024 * 1024
    assert first["cpuCount"] == 2 and 0 <= first["cpuUsedPct"] <= 100
    assert first["diskTotal"] > 0
    batch = api.get("/sandboxes/metrics", params={"sandbox_ids": f"{sandbox_id},nosuch"}).json()
    assert list(batch["sandboxes"]) == [sandbox_id]
    api.post(f"/sandboxes/{sandbox_id}/pause")
    time.sleep(0.6)  # let a sample that was under way land
    count_paused = len(api.get(metrics).json())
    time.sleep(2.1)  # two sampling periods
    assert len(api.get(metrics).json()) == count_paused


def test_logs_record_the_lifecycle(api: httpx.Client, sandbox: dict[str, Any]) -> None:
    logs = api.get(f"/v2/sandboxes/{sandbox['sandboxID']}/logs").json()["logs"]
    assert any("sandbox created" in line["message"] for line in logs)
    assert set(logs[0]) == {"timestamp", "level", "message", "fields"}
    legacy = api.get(f"/sandboxes/{sandbox['sandboxID']}/logs").json()
    assert set(legacy) == {"logs", "logEntries"}


def test_templates_are_listed_as_e2b_lists_them(api: httpx.Client, sandbox: dict[str, Any]) -> None:
    answer = api.get("/v2/templates").json()
    Template.model_validate(answer[0])  # what sandscope's client requires of a template
    templates = {item["templateID"]: item for item in answer}
    assert set(templates) == {"base", "small"}
    base = templates["base"]
    assert (base["cpuCount"], base["memoryMB"], base["buildStatus"]) == (2, 512, "ready")
    assert base["spawnCount"] >= 1 and base["lastSpawnedAt"] is not None
