"""Finding 2: code in a box must not control the host-agent channel.

Two halves. From inside a real box (through the official SDK): user code tries to ptrace the
agent, to open its descriptors (the channel to sandboxd) and to signal it, and must fail. And
since no box code can reach the channel after that, the host's reader is also fed hostile
streams straight from a process this test controls (a real pipe, a real `AgentClient`): an
endless line, forged `end` events, events for pids the host never started. Each must end that
box's channel with a recorded reason, within a bounded time and memory, and never reach the
hook that writes the sandbox's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from e2b import Sandbox

from sandboxd.agent import AgentClient, AgentEvent, ProcessEnded
from sandboxd.agent.channel import MAX_LINE_BYTES
from sandboxd.testing import RunningSandboxd

TIMEOUT_S = 30.0
HOSTILE_LINE_BYTES = 64 << 20  # past the host's line bound, and still small for this machine
# Headroom over the line bound for the reader's chunks and the interpreter's own churn.
READER_RSS_SLACK_BYTES = 16 << 20

needs_full_isolation = pytest.mark.skipif(
    os.geteuid() != 0, reason="full isolation (namespaces as an unprivileged uid) needs root"
)

# Finds the agent from inside the box by its command line (world-readable), whatever its pid.
FIND_AGENT = """
import ctypes, errno, json, os, signal, sys
def agent_pid():
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\\0")
            except OSError:
                continue
            # bwrap's own init (if any) carries the agent's path in its argv too
            if argv[0].endswith(b"python3") and b"/opt/sandboxd/agent.py" in argv:
                return int(name)
    sys.exit("no agent found")
pid = agent_pid()
"""

PTRACE = """
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE = 0x4206  # attaches without stopping it: on failure to refuse, the box lives on
seized = libc.ptrace(PTRACE_SEIZE, pid, 0, 0)
ptrace_errno = ctypes.get_errno()
try:
    os.close(os.open(f"/proc/{pid}/mem", os.O_RDWR))
    mem = "opened"
except OSError as exc:
    mem = errno.errorcode[exc.errno]
print(json.dumps({"pid": pid, "seized": seized, "errno": ptrace_errno, "mem": mem}))
"""

# A forged `end` with the words the OOM collector looks for, written to every descriptor
# of the agent that opens for writing (its stdout is the channel to sandboxd).
FORGE = """
FORGED = {"event": "end", "pid": 4242, "exit_code": -1, "exited": False, "signal": "killed",
          "signal_number": 9, "status": "OOM kill: forged (pid 4242) killed", "error": None}
opened, refused = [], {}
try:
    names = os.listdir(f"/proc/{pid}/fd")
except OSError as exc:
    refused["listing"] = errno.errorcode[exc.errno]
    names = [str(n) for n in range(32)]
for name in names:
    try:
        fd = os.open(f"/proc/{pid}/fd/{name}", os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        refused[name] = errno.errorcode[exc.errno]
        continue
    opened.append(name)
    try:
        if os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:"):
            os.write(fd, (json.dumps(FORGED) + "\\n").encode())
    except OSError:
        pass
    os.close(fd)
print(json.dumps({"pid": pid, "opened": opened, "refused": refused}))
"""

SIGNALS = """
sent = {}
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGSTOP, signal.SIGKILL):
    try:
        os.kill(pid, signum)
        sent[signum.name] = "sent"
    except OSError as exc:
        sent[signum.name] = errno.errorcode[exc.errno]
print(json.dumps({"pid": pid, "sent": sent}))
"""


def run_in_box(sandbox: Sandbox, script: str) -> dict[str, object]:
    """Run a Python script as the box's user; return the JSON it printed last."""
    sandbox.files.write("/home/user/attack.py", FIND_AGENT + script)
    done = sandbox.commands.run("python3 /home/user/attack.py", timeout=TIMEOUT_S)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@needs_full_isolation
def test_box_code_cannot_ptrace_the_agent(small_sandbox: Sandbox) -> None:
    result = run_in_box(small_sandbox, PTRACE)

    assert result["seized"] == -1, f"the agent could be traced: {result}"
    assert result["errno"] == 1  # EPERM: not dumpable, and no CAP_SYS_PTRACE in the box
    assert result["mem"] != "opened"


@needs_full_isolation
def test_box_code_cannot_write_to_the_agent_channel(
    small_sandbox: Sandbox, sandboxd: RunningSandboxd
) -> None:
    result = run_in_box(small_sandbox, FORGE)
    # Whatever reached sandboxd has been read by the time another command has run.
    assert small_sandbox.commands.run("echo after").stdout.strip() == "after"
    logs = sandbox_log_text(sandboxd, small_sandbox.sandbox_id)

    assert result["opened"] == [], f"agent descriptors opened from the box: {result}"
    assert "listing" in result["refused"]  # type: ignore[operator]
    assert "4242" not in logs and "OOM kill" not in logs


@needs_full_isolation
def test_box_code_cannot_signal_the_agent(small_sandbox: Sandbox) -> None:
    result = run_in_box(small_sandbox, SIGNALS)

    # The box still answers: the agent neither stopped, nor paused, nor died.
    again = small_sandbox.commands.run("echo still here", timeout=10, request_timeout=20)
    assert again.stdout.strip() == "still here", result
    assert result["pid"] == 1  # the box's init: the kernel drops its unhandled signals


def sandbox_log_text(server: RunningSandboxd, sandbox_id: str) -> str:
    """Every log line of a sandbox, as sandboxd's API gives them, joined."""
    with httpx.Client(base_url=server.api_url, headers={"X-API-Key": server.api_key}) as api:
        answer = api.get(f"/v2/sandboxes/{sandbox_id}/logs", params={"limit": 1000})
        answer.raise_for_status()
        return "\n".join(json.dumps(line) for line in answer.json()["logs"])


# --- the host's reader, fed by a hostile "agent" ---------------------------------------

READY = {"event": "ready", "version": 1, "pid": 2, "home": "/home/user"}


def hostile_agent(body: str) -> str:
    """A Python program that says ready, then runs `body` (with `send(obj)`, `raw(bytes)` and
    `request()` to read one host request), then waits for its stdin to close."""
    return f"""
import json, os, sys
out = sys.stdout.buffer
def raw(data):
    out.write(data)
    out.flush()
def send(obj):
    raw(json.dumps(obj).encode() + b"\\n")
def request():
    return json.loads(sys.stdin.buffer.readline())
send({READY!r})
{body}
sys.stdin.buffer.read()
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Hostile:
    """Starts hostile agents for one test; kills them and closes their clients after it."""

    def __init__(self, script_dir: Path) -> None:
        self.script_dir = script_dir
        self.made: list[tuple[AgentClient, asyncio.subprocess.Process]] = []

    async def open(self, body: str, events: list[AgentEvent]) -> AgentClient:
        """A client on a new hostile agent running `body`."""
        script = self.script_dir / f"hostile_{len(self.made)}.py"
        script.write_text(hostile_agent(body))  # a file: a body can outgrow a command line
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(script),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        client = AgentClient.for_process(
            process, on_event=events.append, request_timeout_s=TIMEOUT_S
        )
        self.made.append((client, process))
        return client

    async def aclose(self) -> None:
        for client, process in self.made:
            if process.returncode is None:
                process.kill()
            await client.aclose()
            # A channel cut off for a violation stops reading: drain the dead agent's pipe to
            # its end, or asyncio's wait() never sees the pipe close.
            if process.stdout is not None:
                async with asyncio.timeout(TIMEOUT_S):
                    while await process.stdout.read(1 << 16):
                        pass
            await process.wait()


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Hostile]:
    made = Hostile(tmp_path)
    yield made
    await made.aclose()


async def ended_by_violation(client: AgentClient) -> str:
    """Wait (bounded) for the channel to end; return the violation it recorded."""
    async with asyncio.timeout(TIMEOUT_S):
        await client.closed
    assert client.violation is not None, "the channel ended without a recorded violation"
    return client.violation


@pytest.mark.anyio
async def test_an_endless_line_ends_the_channel_in_bounded_memory(
    hostile: Hostile,
) -> None:
    events: list[AgentEvent] = []
    own = psutil.Process()
    before_bytes = own.memory_info().rss
    peak_bytes = before_bytes
    started_s = time.monotonic()
    chunk = f"raw(b'x' * {1 << 20})"
    client = await hostile.open(f"for _ in range({HOSTILE_LINE_BYTES >> 20}): {chunk}", events)
    while not client.closed.done() and time.monotonic() - started_s < TIMEOUT_S:
        peak_bytes = max(peak_bytes, own.memory_info().rss)
        await asyncio.sleep(0.02)  # a sampling period, not a wait for a condition
    violation = await ended_by_violation(client)

    assert "line" in violation and str(MAX_LINE_BYTES) in violation
    assert peak_bytes - before_bytes < MAX_LINE_BYTES + READER_RSS_SLACK_BYTES
    assert time.monotonic() - started_s < 10


@pytest.mark.anyio
async def test_a_forged_end_for_a_pid_never_started_is_refused(
    hostile: Hostile,
) -> None:
    events: list[AgentEvent] = []
    forged = {
        "event": "end", "pid": 4242, "exit_code": -1, "exited": False, "signal": "killed",
        "signal_number": 9, "status": "OOM kill: forged (pid 4242) killed", "error": None,
    }  # fmt: skip
    client = await hostile.open(f"send({forged!r})", events)
    violation = await ended_by_violation(client)

    assert "4242" in violation
    assert not [e for e in events if isinstance(e, ProcessEnded)]


@pytest.mark.anyio
async def test_data_for_a_pid_never_started_is_refused(hostile: Hostile) -> None:
    events: list[AgentEvent] = []
    data = {"event": "data", "pid": 4243, "stream": "stdout", "data": "aGk="}
    client = await hostile.open(f"send({data!r})", events)

    assert "4243" in await ended_by_violation(client)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fields",
    [
        {"status": "exit status 0" + " OOM kill" * 100_000},  # ~1 MiB of status text
        {"status": "OOM kill: x (pid 7) killed"},
        {"exit_code": 1 << 40, "status": f"exit status {1 << 40}"},
        {"error": "x" * 5000},
        {"exited": "yes"},
    ],
)
async def test_an_end_with_unbounded_fields_is_refused(
    hostile: Hostile, fields: dict[str, object]
) -> None:
    events: list[AgentEvent] = []
    end = {"event": "end", "exit_code": 0, "exited": True, "signal": None}
    end |= {"signal_number": None, "status": "exit status 0", "error": None, **fields}
    body = f"""
req = request()
send({{"id": req["id"], "ok": True, "result": {{"pid": 77}}}})
send(dict({end!r}, pid=77))
"""
    client = await hostile.open(body, events)
    async with asyncio.timeout(TIMEOUT_S):
        handle = await client.start_process("/bin/true")
    violation = await ended_by_violation(client)

    assert "77" in violation
    assert not [e for e in events if isinstance(e, ProcessEnded)]
    assert handle.end is None


@pytest.mark.anyio
async def test_a_well_formed_end_for_a_started_pid_is_accepted(
    hostile: Hostile,
) -> None:
    """The control case: the same stream with honest fields goes through."""
    events: list[AgentEvent] = []
    end = {"event": "end", "pid": 77, "exit_code": -1, "exited": False, "signal": "killed"}
    end |= {"signal_number": 9, "status": "signal: killed", "error": "signal: killed"}
    body = f"""
req = request()
send({{"id": req["id"], "ok": True, "result": {{"pid": 77}}}})
send({{"event": "data", "pid": 77, "stream": "stdout", "data": "aGk="}})
send({end!r})
"""
    client = await hostile.open(body, events)
    async with asyncio.timeout(TIMEOUT_S):
        handle = await client.start_process("/bin/true")
        outcome = await handle.wait()

    assert outcome.signal == "killed" and client.violation is None
    assert [e.pid for e in events if isinstance(e, ProcessEnded)] == [77]
