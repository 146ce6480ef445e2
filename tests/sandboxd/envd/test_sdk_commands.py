"""The official SDK's commands (e2b.sandbox_sync.commands) through the envd server."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from e2b import AsyncSandbox, CommandExitException, PtySize, Sandbox
from e2b.exceptions import TimeoutException

TIMEOUT_S = 20


def test_run_returns_output_and_exit_code(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo hi; echo there >&2")

    assert (result.stdout, result.stderr, result.exit_code) == ("hi\n", "there\n", 0)
    assert result.error is None


def test_a_failing_command_raises_command_exit_exception(sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitException) as failure:
        sandbox.commands.run("echo partial; echo broken >&2; exit 3")

    assert failure.value.exit_code == 3
    assert (failure.value.stdout, failure.value.stderr) == ("partial\n", "broken\n")
    assert failure.value.error == "exit status 3"


def test_envs_cwd_and_streaming_callbacks(sandbox: Sandbox, home) -> None:
    (home / "sub").mkdir()
    seen: list[str] = []
    result = sandbox.commands.run(
        'echo "$GREETING from $(pwd)"; sleep 0.2; echo done',
        envs={"GREETING": "hello"},
        cwd=str(home / "sub"),
        on_stdout=seen.append,
    )

    assert result.stdout == f"hello from {home / 'sub'}\ndone\n"
    assert "".join(seen) == result.stdout and len(seen) == 2


def test_background_command_and_kill(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 30", background=True)
    listed = [p.pid for p in sandbox.commands.list()]

    assert handle.pid in listed
    assert sandbox.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as killed:
        handle.wait()
    assert killed.value.exit_code == -1 and killed.value.error == "signal: killed"
    assert sandbox.commands.kill(handle.pid) is False  # not found: already gone


def test_stdin_send_and_close(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("cat", background=True, stdin=True)
    handle.send_stdin("hello ")
    sandbox.commands.send_stdin(handle.pid, b"stdin\n")
    handle.close_stdin()
    result = handle.wait()

    assert result.stdout == "hello stdin\n" and result.exit_code == 0


def test_stream_input(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("cat", background=True, stdin=True)
    sandbox.commands.stream_input(handle.pid, ["one ", b"two ", "three\n"])
    handle.close_stdin()

    assert handle.wait().stdout == "one two three\n"


def test_connect_to_a_running_command(sandbox: Sandbox) -> None:
    started = sandbox.commands.run("sleep 0.5; echo late", background=True)
    started.disconnect()
    followed = sandbox.commands.connect(started.pid)

    assert followed.wait().stdout == "late\n"


def test_list_reports_the_command(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 30", background=True, envs={"K": "V"})
    [info] = [p for p in sandbox.commands.list() if p.pid == handle.pid]
    sandbox.commands.kill(handle.pid)

    assert (info.cmd, info.args, info.envs) == ("/bin/bash", ["-l", "-c", "sleep 30"], {"K": "V"})


def test_the_command_timeout_kills_it(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        sandbox.commands.run("sleep 30", timeout=1)

    assert time.monotonic() - started < TIMEOUT_S
    deadline = time.monotonic() + 5
    while sandbox.commands.list() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.commands.list() == []


def test_pty_create_input_and_kill(sandbox: Sandbox) -> None:
    output = bytearray()
    handle = sandbox.pty.create(PtySize(rows=24, cols=80))
    sandbox.pty.send_stdin(handle.pid, b"echo from-the-pty; exit 0\n")
    sandbox.pty.resize(handle.pid, PtySize(rows=30, cols=100))
    result = handle.wait(on_pty=output.extend)

    assert b"from-the-pty" in output
    assert result.exit_code == 0


def test_concurrent_commands_from_threads(sandbox: Sandbox) -> None:
    def run(n: int) -> str:
        return sandbox.commands.run(f"for i in 1 2 3; do echo {n}-$i; sleep 0.05; done").stdout

    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = list(pool.map(run, range(8)))

    assert outputs == [f"{n}-1\n{n}-2\n{n}-3\n" for n in range(8)]


def test_the_async_sdk_works_too(envd: Any, sandbox: Sandbox) -> None:
    async def scenario() -> tuple[str, bool, str]:
        config = sandbox.connection_config
        async_sandbox = AsyncSandbox(
            sandbox_id=sandbox.sandbox_id,
            sandbox_domain=None,
            envd_version=sandbox._envd_version,
            envd_access_token=sandbox._envd_access_token,
            traffic_access_token=None,
            connection_config=config,
        )
        async with asyncio.timeout(TIMEOUT_S):
            result = await async_sandbox.commands.run("echo async")
            await async_sandbox.files.write("async.txt", "from async")
            made = await async_sandbox.files.make_dir("async-dir")
            return result.stdout, made, await async_sandbox.files.read("async.txt")

    assert asyncio.run(scenario()) == ("async\n", True, "from async")
