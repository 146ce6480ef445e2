"""Processes through AgentClient against a real agent subprocess."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from sandboxd.agent import (
    AgentClient,
    AgentError,
    AgentEvent,
    Data,
    End,
    ProcessEnded,
    ProcessHandle,
    ProcessStarted,
)

pytestmark = pytest.mark.anyio
TIMEOUT_S = 15


async def collect(handle: ProcessHandle) -> tuple[list[Data], End]:
    """Every data event, then the end (bounded in time)."""
    data: list[Data] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for event in handle:
            if isinstance(event, Data):
                data.append(event)
    assert handle.end is not None
    return data, handle.end


def joined(data: list[Data], stream: str) -> bytes:
    return b"".join(d.data for d in data if d.stream == stream)


async def test_output_streams_in_order_as_it_is_written(agent: AgentClient) -> None:
    script = "echo one; sleep 0.4; echo two >&2; sleep 0.4; echo three"
    handle = await agent.start_process("/bin/sh", ["-c", script])
    arrivals: list[tuple[float, Data | End]] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for event in handle:
            arrivals.append((time.monotonic(), event))

    events = [event for _, event in arrivals]
    assert events[:3] == [
        Data("stdout", b"one\n"),
        Data("stderr", b"two\n"),
        Data("stdout", b"three\n"),
    ]
    assert isinstance(events[-1], End) and events[-1].exit_code == 0
    first_output_at, end_at = arrivals[0][0], arrivals[-1][0]
    assert end_at - first_output_at > 0.6, "output was held back until the exit"


async def test_exit_codes_and_go_style_status(agent: AgentClient) -> None:
    _, ok = await collect(await agent.start_process("/bin/sh", ["-c", "exit 0"]))
    _, failed = await collect(await agent.start_process("/bin/sh", ["-c", "echo no >&2; exit 7"]))

    assert ok == End(exit_code=0, exited=True, status="exit status 0")
    assert failed.exit_code == 7 and failed.exited
    assert failed.status == failed.error == "exit status 7"
    assert failed.signal is None


async def test_a_command_that_cannot_start_is_an_invalid_argument(
    agent: AgentClient, home: Path
) -> None:
    with pytest.raises(AgentError) as missing_binary:
        await agent.start_process("/no/such/binary")
    with pytest.raises(AgentError) as missing_cwd:
        await agent.start_process("/bin/true", cwd=str(home / "nope"))

    assert missing_binary.value.code == "invalid_argument"
    assert missing_cwd.value.code == "invalid_argument"
    assert "does not exist" in missing_cwd.value.message


async def test_signals_by_name_end_the_process(agent: AgentClient) -> None:
    term = await agent.start_process("/bin/sleep", ["30"])
    kill = await agent.start_process("/bin/sleep", ["30"])
    await agent.send_signal(term.pid, "SIGTERM")
    await agent.send_signal(kill.pid, "SIGNAL_SIGKILL")  # envd's enum name works too

    _, term_end = await collect(term)
    _, kill_end = await collect(kill)
    assert (term_end.exit_code, term_end.exited) == (-1, False)
    assert term_end.status == "signal: terminated"
    assert (kill_end.signal, kill_end.signal_number) == ("killed", 9)
    assert kill_end.status == "signal: killed"


async def test_signal_errors(agent: AgentClient) -> None:
    handle = await agent.start_process("/bin/sleep", ["30"])
    with pytest.raises(AgentError) as bad_name:
        await agent.send_signal(handle.pid, "SIGNOPE")
    await agent.send_signal(handle.pid, 9)
    await collect(handle)
    with pytest.raises(AgentError) as gone:
        await agent.send_signal(handle.pid, "SIGKILL")

    assert bad_name.value.code == "invalid_argument"
    assert gone.value.code == "not_found"


async def test_a_child_killed_by_sigkill_is_reported_like_an_oom_kill(agent: AgentClient) -> None:
    # What the kernel's OOM killer does to a child: SIGKILL from outside its control.
    handle = await agent.start_process("/bin/sh", ["-c", "echo before; kill -KILL $$"])
    data, end = await collect(handle)

    assert joined(data, "stdout") == b"before\n"
    assert (end.exit_code, end.signal, end.status) == (-1, "killed", "signal: killed")
    assert end.error == "signal: killed"
    assert await agent.list_processes() == []


async def test_stdin_is_written_and_closed(agent: AgentClient) -> None:
    handle = await agent.start_process("/bin/cat", stdin=True)
    await agent.send_input(handle.pid, b"hello ")
    await agent.send_input(handle.pid, b"world\n")
    await agent.close_stdin(handle.pid)
    data, end = await collect(handle)

    assert joined(data, "stdout") == b"hello world\n"
    assert end.exit_code == 0


async def test_input_to_a_process_without_stdin_is_refused(agent: AgentClient) -> None:
    handle = await agent.start_process("/bin/sleep", ["30"], stdin=False)
    with pytest.raises(AgentError) as refused:
        await agent.send_input(handle.pid, b"x")
    await agent.send_signal(handle.pid, "SIGKILL")
    await collect(handle)

    assert refused.value.code == "failed_precondition"


async def test_large_input_is_taken_in_full(agent: AgentClient) -> None:
    payload = os.urandom(3 << 20)  # far over a pipe's buffer
    handle = await agent.start_process("/bin/sh", ["-c", "wc -c"], stdin=True)
    await agent.send_input(handle.pid, payload)
    await agent.close_stdin(handle.pid)
    data, _ = await collect(handle)

    assert int(joined(data, "stdout")) == len(payload)


async def test_list_shows_running_processes_with_their_request(
    agent: AgentClient, home: Path
) -> None:
    one = await agent.start_process("/bin/sleep", ["30"], envs={"A": "1"}, tag="one")
    two = await agent.start_process("/bin/sleep", ["31"], cwd="/tmp")
    listed = {p.pid: p for p in await agent.list_processes()}

    assert listed[one.pid].cmd == "/bin/sleep" and listed[one.pid].args == ["30"]
    assert listed[one.pid].envs == {"A": "1"} and listed[one.pid].tag == "one"
    assert listed[one.pid].cwd == str(home)
    assert listed[two.pid].cwd == "/tmp" and listed[two.pid].tag is None
    for handle in (one, two):
        await agent.send_signal(handle.pid, "SIGKILL")
        await collect(handle)
    assert await agent.list_processes() == []


async def test_envs_are_merged_over_the_base_env(agent: AgentClient, home: Path) -> None:
    script = 'printf "%s|%s|%s" "$HOME" "$GREETING" "$PWD"'
    handle = await agent.start_process("/bin/sh", ["-c", script], envs={"GREETING": "hi"})
    data, _ = await collect(handle)

    assert joined(data, "stdout").decode() == f"{os.environ['HOME']}|hi|{home}"


async def test_concurrent_processes_keep_their_streams_apart(agent: AgentClient) -> None:
    script = 'for i in 1 2 3 4 5; do echo "$0-$i"; sleep 0.01; done'
    handles = [await agent.start_process("/bin/sh", ["-c", script, str(n)]) for n in range(12)]
    results = await asyncio.gather(*(collect(handle) for handle in handles))

    for n, (data, end) in enumerate(results):
        expected = "".join(f"{n}-{i}\n" for i in range(1, 6)).encode()
        assert joined(data, "stdout") == expected
        assert end.exit_code == 0


async def test_connect_follows_a_running_process_until_its_end(agent: AgentClient) -> None:
    first = await agent.start_process("/bin/sh", ["-c", "sleep 0.5; echo late"])
    second = await agent.connect(first.pid)
    data, end = await collect(second)
    first.close()

    assert joined(data, "stdout") == b"late\n" and end.exit_code == 0
    with pytest.raises(AgentError) as gone:
        await agent.connect(first.pid)
    assert gone.value.code == "not_found"


async def test_timeout_kills_the_process(agent: AgentClient) -> None:
    started = time.monotonic()
    handle = await agent.start_process("/bin/sleep", ["30"], timeout_s=0.3)
    _, end = await collect(handle)

    assert end.signal == "killed"
    assert time.monotonic() - started < 5


async def test_orphans_are_reaped(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    handle = await agent.start_process("/bin/sh", ["-c", "sleep 0.2 & exit 0"])
    await collect(handle)
    await asyncio.sleep(0.8)  # the orphan ends and becomes the agent's to reap

    assert zombie_children(agent_process.pid) == []


def zombie_children(parent_pid: int) -> list[int]:
    zombies = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == parent_pid:
                zombies.append(int(entry.name))
    return zombies


async def test_pty_processes_get_a_terminal(agent: AgentClient) -> None:
    script = "stty size; read line; echo got $line"
    handle = await agent.start_process("/bin/sh", ["-c", script], pty_size=(100, 30))
    await agent.resize_pty(handle.pid, 120, 40)
    await agent.send_input(handle.pid, b"abc\n")
    data, end = await collect(handle)

    output = joined(data, "pty")
    assert b"30 100" in output or b"40 120" in output
    assert b"got abc" in output
    assert end.exit_code == 0


async def test_the_hook_hears_each_start_and_end(
    agent: AgentClient, hook_events: list[AgentEvent]
) -> None:
    handle = await agent.start_process("/bin/sh", ["-c", "exit 3"], tag="t")
    await collect(handle)

    assert hook_events == [
        ProcessStarted(pid=handle.pid, cmd="/bin/sh", args=["-c", "exit 3"], tag="t"),
        ProcessEnded(pid=handle.pid, cmd="/bin/sh", end=handle.end),  # type: ignore[arg-type]
    ]


async def test_when_the_agent_dies_streams_and_requests_end(
    agent: AgentClient, agent_process: asyncio.subprocess.Process
) -> None:
    handle = await agent.start_process("/bin/sleep", ["30"])
    agent_process.kill()
    async with asyncio.timeout(TIMEOUT_S):
        await agent.closed
        with pytest.raises(AgentError) as stream_error:
            await handle.wait()
        with pytest.raises(AgentError) as request_error:
            await agent.list_processes()

    assert stream_error.value.code == request_error.value.code == "unavailable"
