"""Bad input never takes the agent down: it answers an error and carries on."""

from __future__ import annotations

import asyncio
import json

import pytest

from sandboxd.agent import AgentClient, AgentError

pytestmark = pytest.mark.anyio
TIMEOUT_S = 15


async def raw_exchange(process: asyncio.subprocess.Process, lines: list[bytes]) -> None:
    assert process.stdin is not None
    for line in lines:
        process.stdin.write(line + b"\n")
    await process.stdin.drain()


async def test_garbage_lines_are_answered_and_survived(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    await raw_exchange(
        agent_process,
        [
            b"not json at all",
            b"[1, 2, 3]",
            b'{"op": "ping"}',  # no id
            b'{"id": "seven", "op": "ping"}',
            b'{"id": 900001, "op": "no_such_op"}',
            b'{"id": 900002, "op": "start", "cmd": 5}',
            b'{"id": 900003, "op": "start", "cmd": "/bin/true", "args": "not a list"}',
            b'{"id": 900004, "op": "input", "pid": 1, "data": "***"}',
            b'{"id": 900005, "op": "signal", "pid": "x", "signal": "KILL"}',
            b'{"id": 900006, "op": "read", "handle": 12345}',
            b'{"id": 900007, "op": "stat", "path": "a\\u0000b"}',
            b"\xff\xfe\x00 binary",
            b"{" * 5000,
        ],
    )
    async with asyncio.timeout(TIMEOUT_S):
        handle = await agent.start_process("/bin/echo", ["still alive"])
        assert (await handle.wait()).exit_code == 0
    assert agent_process.returncode is None


async def test_bad_arguments_get_invalid_argument(agent: AgentClient) -> None:
    with pytest.raises(AgentError) as bad_depth:
        await agent.list_dir(".", depth="deep")  # type: ignore[arg-type]
    with pytest.raises(AgentError) as bad_pid:
        await agent.send_input("one", b"x")  # type: ignore[arg-type]

    assert bad_depth.value.code == bad_pid.value.code == "invalid_argument"


async def test_answers_to_unknown_ids_are_ignored_by_the_client(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    request = {"id": 10**9, "op": "list"}
    await raw_exchange(agent_process, [json.dumps(request).encode()])

    async with asyncio.timeout(TIMEOUT_S):
        assert await agent.list_processes() == []


async def test_closing_stdin_ends_the_agent_and_its_processes(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    handle = await agent.start_process("/bin/sleep", ["30"])
    await agent.aclose()
    async with asyncio.timeout(TIMEOUT_S):
        assert await agent_process.wait() == 0
        with pytest.raises(AgentError):
            await handle.wait()


async def test_a_bad_start_argument_starts_nothing(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    bad = {"id": 900100, "op": "start", "cmd": "/bin/sleep", "args": ["30"], "timeout_ms": "soon"}
    await raw_exchange(agent_process, [json.dumps(bad).encode(), b"", b"   "])
    with pytest.raises(AgentError) as bad_size:
        await agent.start_process("/bin/sleep", ["30"], pty_size=(0, 0))

    async with asyncio.timeout(TIMEOUT_S):
        assert await agent.list_processes() == []
    assert bad_size.value.code == "invalid_argument"


async def test_an_over_long_line_is_dropped_not_fatal(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    await raw_exchange(agent_process, [b'{"id": 1, "op": "ping", "pad": "' + b"x" * (65 << 20)])

    async with asyncio.timeout(TIMEOUT_S):
        assert await agent.list_processes() == []
        handle = await agent.start_process("/bin/echo", ["ok"])
        assert (await handle.wait()).exit_code == 0
