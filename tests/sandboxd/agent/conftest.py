"""The agent as a plain local subprocess (no isolation), its home in tmp_path."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandboxd.agent import AgentClient, AgentEvent

AGENT_SCRIPT = Path(__file__).resolve().parents[3] / "sandboxd" / "agent" / "agent.py"
TIMEOUT_S = 15


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def hook_events() -> list[AgentEvent]:
    return []


@pytest.fixture
async def agent_process(home: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", str(AGENT_SCRIPT), "--home", str(home),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        async with asyncio.timeout(TIMEOUT_S):
            await process.wait()


@pytest.fixture
async def agent(
    agent_process: asyncio.subprocess.Process, hook_events: list[AgentEvent]
) -> AsyncIterator[AgentClient]:
    client = AgentClient.for_process(
        agent_process, on_event=hook_events.append, request_timeout_s=TIMEOUT_S
    )
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await client.wait_ready()
        yield client
    finally:
        await client.aclose()  # the agent kills what is left and exits
        async with asyncio.timeout(TIMEOUT_S):
            await agent_process.wait()
