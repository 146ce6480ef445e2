"""Which sandbox a call reaches, and who may reach it: what E2B's proxy and envd answer."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2b import Sandbox
from e2b.exceptions import AuthenticationException, SandboxNotRunningException
from e2b.sandbox.signature import get_signature

SANDBOX_ID = "sbx-local-1"
ACCESS_TOKEN = "secret-envd-token"
UNARY = {"content-type": "application/json"}


def test_health_is_204_without_a_token(envd: Any) -> None:
    response = httpx.get(f"{envd.url}/health", headers={"E2b-Sandbox-Id": SANDBOX_ID})

    assert response.status_code == 204


def test_an_unknown_sandbox_gets_the_proxy_502(envd: Any) -> None:
    response = httpx.post(
        f"{envd.url}/process.Process/List", json={}, headers={"E2b-Sandbox-Id": "nope"}
    )
    no_header = httpx.get(f"{envd.url}/health")

    assert response.status_code == 502
    assert response.json() == {
        "sandboxId": "nope",
        "message": "The sandbox was not found",
        "code": 502,
    }
    assert no_header.status_code == 400


def test_the_sdk_reads_an_unknown_sandbox_as_not_running(
    sandbox_for: Callable[..., Sandbox],
) -> None:
    gone = sandbox_for("nope")

    assert gone.is_running() is False
    with pytest.raises(SandboxNotRunningException):
        gone.commands.run("true")
    with pytest.raises(SandboxNotRunningException):
        gone.files.read("x")
    with pytest.raises(SandboxNotRunningException):
        gone.files.exists("x")


def test_a_paused_sandbox_is_not_running_for_the_sdk(envd: Any, sandbox: Sandbox) -> None:
    envd.target.state = "paused"

    assert sandbox.is_running() is False
    with pytest.raises(SandboxNotRunningException):
        sandbox.commands.run("true")
    with pytest.raises(SandboxNotRunningException):
        sandbox.files.write("x", "y")
    envd.target.state = "running"
    assert sandbox.commands.run("echo back").stdout == "back\n"


def test_the_access_token_is_enforced(envd: Any, http: httpx.Client) -> None:
    without = {"X-Access-Token": ""}
    rpc = http.post("/process.Process/List", json={}, headers={**UNARY, **without})
    wrong = http.post("/process.Process/List", json={}, headers={**UNARY, "X-Access-Token": "x"})
    files = http.get("/files", params={"path": "x"}, headers=without)
    envd.target.access_token = None  # a target without a token lets nobody in
    still_shut = http.post("/process.Process/List", json={}, headers={**UNARY, **without})

    assert (rpc.status_code, rpc.json()["code"]) == (401, "unauthenticated")
    assert wrong.status_code == 401
    assert (files.status_code, files.json()["code"]) == (401, 401)
    assert still_shut.status_code == 401


def test_the_sdk_with_a_wrong_token_gets_authentication_errors(
    sandbox_for: Callable[..., Sandbox],
) -> None:
    intruder = sandbox_for(token="wrong")

    with pytest.raises(AuthenticationException):
        intruder.commands.run("true")
    with pytest.raises(AuthenticationException):
        intruder.files.read("x")


def test_signed_file_urls_work_without_the_token(envd: Any, home: Any) -> None:
    (home / "shared.txt").write_text("signed")
    headers = {"E2b-Sandbox-Id": SANDBOX_ID}

    def get(**params: Any) -> httpx.Response:
        return httpx.get(f"{envd.url}/files", params=params, headers=headers)

    signed = get_signature("shared.txt", "read", None, ACCESS_TOKEN)
    expiring = get_signature("shared.txt", "read", None, ACCESS_TOKEN, 60)
    expired = get_signature("shared.txt", "read", None, ACCESS_TOKEN, -10)
    other_path = get_signature("other.txt", "read", None, ACCESS_TOKEN)

    assert get(path="shared.txt", signature=signed["signature"]).text == "signed"
    expiration = str(expiring["expiration"])
    ok = get(path="shared.txt", signature=expiring["signature"], signature_expiration=expiration)
    assert ok.text == "signed"
    late = str(expired["expiration"])
    assert (
        get(
            path="shared.txt", signature=expired["signature"], signature_expiration=late
        ).status_code
        == 401
    )
    assert get(path="shared.txt", signature=other_path["signature"]).status_code == 401
    assert time.time() < expiring["expiration"]  # type: ignore[operator]


def test_users_come_from_basic_auth_or_the_username_parameter(http: httpx.Client) -> None:
    def basic(user: str) -> dict[str, str]:
        return {**UNARY, "Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}

    as_user = http.post("/process.Process/List", json={}, headers=basic("user"))
    as_root = http.post("/process.Process/List", json={}, headers=basic("root"))
    stranger = http.post("/process.Process/List", json={}, headers=basic("mallory"))
    stranger_files = http.get("/files", params={"path": "x", "username": "mallory"})

    assert as_user.status_code == as_root.status_code == 200
    assert (stranger.status_code, stranger.json()["code"]) == (401, "unauthenticated")
    assert stranger_files.status_code == 401


def test_host_based_routing(envd: Any) -> None:
    response = httpx.get(f"{envd.url}/health", headers={"Host": f"49983-{SANDBOX_ID}.e2b.local"})

    assert response.status_code == 204


def test_a_sandbox_ending_mid_command_is_not_running_for_the_sdk(
    envd: Any, sandbox: Sandbox
) -> None:
    handle = sandbox.commands.run("sleep 30", background=True)
    del envd.targets[SANDBOX_ID]  # what the manager does once the sandbox is killed
    envd.loop.call_soon_threadsafe(envd.process.kill)

    with pytest.raises(SandboxNotRunningException):
        handle.wait()
