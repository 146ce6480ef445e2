"""A box that ends while a command runs, seen through the official SDK (sync and async): the
SDK must say the sandbox was killed or ended (SandboxNotRunningException), not blame the
command's timeout or a network problem, as it does against E2B."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from e2b import AsyncSandbox, Sandbox, SandboxNotRunningException

TIMEOUT_S = 30
KILLED = "killed or reached its end of life"
# The command says it runs, then outlives any test by far.
COMMAND = "echo running; sleep 60"


def once(action: Callable[[], object]) -> Callable[[str], None]:
    """An on_stdout callback that ends the box when the command says it runs: the stream is
    open by then, so the box ends mid-command, without guessing a delay."""
    done: list[bool] = []

    def on_line(line: str) -> None:
        if "running" in line and not done:
            done.append(True)
            action()

    return on_line


def test_killed_by_the_api_while_running_in_the_foreground(sdk_env: None) -> None:
    sandbox = Sandbox.create(timeout=120)

    with pytest.raises(SandboxNotRunningException, match=KILLED):
        sandbox.commands.run(COMMAND, on_stdout=once(sandbox.kill))


def test_killed_while_a_background_command_is_awaited(sdk_env: None) -> None:
    sandbox = Sandbox.create(timeout=120)
    handle = sandbox.commands.run(COMMAND, background=True)

    with pytest.raises(SandboxNotRunningException, match=KILLED):
        handle.wait(on_stdout=once(sandbox.kill))


def test_ended_by_its_timeout_mid_command(sdk_env: None) -> None:
    sandbox = Sandbox.create(timeout=120)

    with pytest.raises(SandboxNotRunningException, match=KILLED):
        sandbox.commands.run(COMMAND, on_stdout=once(lambda: sandbox.set_timeout(0)))


def test_the_async_sdk_says_so_too(sdk_env: None) -> None:
    async def scenario() -> None:
        async with asyncio.timeout(TIMEOUT_S):
            sandbox = await AsyncSandbox.create(timeout=120)
            running = asyncio.Event()
            handle = await sandbox.commands.run(
                COMMAND, background=True, on_stdout=lambda line: running.set()
            )
            await running.wait()
            await sandbox.kill()
            await handle.wait()

    with pytest.raises(SandboxNotRunningException, match=KILLED):
        asyncio.run(scenario())
