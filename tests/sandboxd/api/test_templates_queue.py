"""The build queue: at most SANDBOXD_MAX_CONCURRENT_BUILDS at once (the others wait), each
cut off at SANDBOXD_BUILD_TIMEOUT_S, and none survives sandboxd stopping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from sandboxd.testing import api_client, running_sandboxd

DEADLINE_S = 60


def _start(api: httpx.Client, name: str, command: str) -> tuple[str, str]:
    made = api.post("/v3/templates", json={"name": name}).json()
    body = {"fromTemplate": "base", "steps": [{"type": "RUN", "args": [command]}]}
    started = api.post(f"/v2/templates/{made['templateID']}/builds/{made['buildID']}", json=body)
    assert started.status_code == 202, started.text
    return made["templateID"], made["buildID"]


def _status(api: httpx.Client, build: tuple[str, str]) -> dict[str, object]:
    template_id, build_id = build
    answer: dict[str, object] = api.get(f"/templates/{template_id}/builds/{build_id}/status").json()
    return answer


def _wait_for(api: httpx.Client, build: tuple[str, str], statuses: set[str]) -> dict[str, object]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        status = _status(api, build)
        if status["status"] in statuses:
            return status
        time.sleep(0.05)
    raise AssertionError(f"build {build} never reached {statuses}")


def test_one_build_at_a_time_each_cut_off_at_its_limit(tmp_path: Path) -> None:
    settings = {"SANDBOXD_MAX_CONCURRENT_BUILDS": "1", "SANDBOXD_BUILD_TIMEOUT_S": "3"}
    with running_sandboxd(tmp_path, **settings) as server, api_client(server) as api:
        slow = _start(api, "queue-slow", "sleep 600")
        quick = _start(api, "queue-quick", "true")
        _wait_for(api, slow, {"building"})
        waiting = _status(api, quick)["status"]
        slow_end = _wait_for(api, slow, {"ready", "error"})
        quick_end = _wait_for(api, quick, {"ready", "error"})
        boxes = api.get("/v2/sandboxes").json()

    assert waiting == "waiting"
    assert slow_end["status"] == "error"
    reason = slow_end["reason"]
    assert isinstance(reason, dict) and "longer than 3 s" in reason["message"]
    assert quick_end["status"] == "ready"
    assert boxes == []  # the build boxes are gone


def test_a_build_does_not_survive_sandboxd_stopping(tmp_path: Path) -> None:
    with running_sandboxd(tmp_path) as server, api_client(server) as api:
        build = _start(api, "queue-stopped", "sleep 600")
        _wait_for(api, build, {"building"})

    with running_sandboxd(tmp_path) as server, api_client(server) as api:
        after = _status(api, build)

    assert after["status"] == "error"
    reason = after["reason"]
    assert isinstance(reason, dict) and "sandboxd stopped" in reason["message"]


def test_a_build_cut_off_by_a_crash_ends_as_an_error(tmp_path: Path) -> None:
    # One cgroup parent for both runs: the second start removes what the crashed one left.
    parent = f"sandboxd-test-build-crash-{os.getpid()}"
    with (
        running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as server,
        api_client(server) as api,
    ):
        build = _start(api, "queue-crashed", "sleep 600")
        _wait_for(api, build, {"building"})
        server.process.kill()  # no shutdown: the next start finds the build still running
        server.process.wait()

    with (
        running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as server,
        api_client(server) as api,
    ):
        after = _status(api, build)

    assert after["status"] == "error"
    reason = after["reason"]
    assert (
        isinstance(reason, dict) and reason["message"] == "sandboxd restarted while the build ran"
    )
