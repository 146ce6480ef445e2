"""`set_timeout(0)` through the official SDK (sync and async) against a real sandboxd: the spec
allows 0, which ends the sandbox now (killed, or paused when it pauses on timeout)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from e2b import AsyncSandbox, NotFoundException, Sandbox, SandboxState

TIMEOUT_S = 30


@pytest.fixture
def made(sdk_env: None) -> Iterator[list[str]]:
    """IDs of the sandboxes a test makes, killed after it if still there."""
    sandbox_ids: list[str] = []
    yield sandbox_ids
    for sandbox_id in sandbox_ids:
        with contextlib.suppress(Exception):  # ended by the test
            Sandbox.kill(sandbox_id)


def test_zero_kills_the_sandbox_before_answering(made: list[str], api: httpx.Client) -> None:
    sandbox = Sandbox.create(timeout=120)
    made.append(sandbox.sandbox_id)

    sandbox.set_timeout(0)

    assert sandbox.is_running() is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sandbox.sandbox_id)
    killed = api.get(f"/events/sandboxes/{sandbox.sandbox_id}").json()[0]
    assert killed["type"] == "sandbox.lifecycle.killed"
    assert killed["eventData"]["kill_reason"] == "timeout"


def test_zero_pauses_a_sandbox_that_pauses_on_timeout(made: list[str]) -> None:
    sandbox = Sandbox.create(timeout=120, lifecycle={"on_timeout": "pause"})
    made.append(sandbox.sandbox_id)

    sandbox.set_timeout(0)

    assert Sandbox.get_info(sandbox.sandbox_id).state == SandboxState.PAUSED
    resumed = Sandbox.connect(sandbox.sandbox_id, timeout=60)
    assert resumed.commands.run("echo back").stdout == "back\n"


def test_the_async_sdk_ends_it_too(made: list[str]) -> None:
    async def scenario() -> bool:
        async with asyncio.timeout(TIMEOUT_S):
            sandbox = await AsyncSandbox.create(timeout=120)
            made.append(sandbox.sandbox_id)
            await sandbox.set_timeout(0)
            return await sandbox.is_running()

    assert asyncio.run(scenario()) is False


def test_below_zero_is_still_refused(made: list[str], api: httpx.Client) -> None:
    sandbox = Sandbox.create(timeout=120)
    made.append(sandbox.sandbox_id)

    answer = api.post(f"/sandboxes/{sandbox.sandbox_id}/timeout", json={"timeout": -1})

    assert answer.status_code == 400 and "timeout" in answer.json()["message"]
    assert sandbox.is_running() is True
