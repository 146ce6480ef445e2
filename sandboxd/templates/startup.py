"""What a built template adds to a sandbox's start: its layer, start command, ready check.

The layer (the build box's home) is extracted inside the new box; the start command then
runs in the background, its output in the sandbox's log (at most MAX_START_LOG_LINES
lines); the ready command is run until it succeeds, at most READY_TIMEOUT_S, before the
create answers.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from sandboxd.agent.client import AgentClient
from sandboxd.agent.handle import ProcessHandle
from sandboxd.agent.messages import AgentError, Data
from sandboxd.templates.boxexec import BASH, LineSplitter, run_script
from sandboxd.templates.builtin import Template
from sandboxd.templates.layers import restore_home

READY_TIMEOUT_S = 30.0
READY_POLL_S = 0.2
READY_RUN_TIMEOUT_S = 5.0
LAYER_TIMEOUT_S = 120.0
MAX_START_LOG_LINES = 500
READY_OUTPUT_LINES = 20  # of the ready command's last run, logged when it never succeeds

LogLine = Callable[[str, str], None]  # (level, message) into the sandbox's log


async def prepare_box(
    template: Template, agent: AgentClient, log: LogLine, tasks: set[asyncio.Task[None]]
) -> None:
    """Give a new box what its template built. Raises LayerError when the layer cannot be
    put back; a ready command that never succeeds is logged, not fatal."""
    if template.layer_file is not None:
        await restore_home(agent, template.layer_file, clean=False, timeout_s=LAYER_TIMEOUT_S)
    if template.start_cmd:
        handle = await agent.start_process(
            BASH,
            ["-c", template.start_cmd],
            envs=template.envs,
            cwd=template.workdir or None,
            tag="start",
        )
        task = asyncio.create_task(_log_output(handle, log))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if template.ready_cmd:
        last_output: list[str] = []
        if await wait_ready(agent, template, READY_TIMEOUT_S, last_output):
            log("info", "the template's ready command succeeded")
            return
        log("warn", f"the template's ready command did not succeed in {READY_TIMEOUT_S:.0f} s")
        for line in last_output:
            log("warn", f"ready command: {line}")


async def wait_ready(
    agent: AgentClient, template: Template, timeout_s: float, last_output: list[str] | None = None
) -> bool:
    """Run the ready command until it exits 0 (True) or `timeout_s` has passed (False).
    `last_output` gets the last READY_OUTPUT_LINES lines of the last run, to say why."""
    assert template.ready_cmd is not None
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        output: collections.deque[str] = collections.deque(maxlen=READY_OUTPUT_LINES)

        def keep(stream: str, line: str, output: collections.deque[str] = output) -> None:
            output.append(line)

        end = await run_script(
            agent,
            template.ready_cmd,
            envs=template.envs,
            cwd=template.workdir or None,
            timeout_s=min(READY_RUN_TIMEOUT_S, remaining),
            on_line=keep,
        )
        if last_output is not None:
            last_output[:] = [*output, f"(ready command: {end.status})"]
        if end.exit_code == 0:
            return True
        await asyncio.sleep(min(READY_POLL_S, max(0.0, deadline - time.monotonic())))


async def _log_output(handle: ProcessHandle, log: LogLine) -> None:
    written = 0

    def line(stream: str, text: str) -> None:
        nonlocal written
        written += 1
        if written <= MAX_START_LOG_LINES:
            log("info", f"start command: {text}")
        elif written == MAX_START_LOG_LINES + 1:
            log(
                "warn",
                f"start command: further output not logged (over {MAX_START_LOG_LINES} lines)",
            )

    splitters = {name: LineSplitter(name, line) for name in ("stdout", "stderr", "pty")}
    try:
        async for event in handle:
            if isinstance(event, Data):
                splitters[event.stream].feed(event.data)
        for splitter in splitters.values():
            splitter.close()
        if handle.end is not None:
            log("info", f"start command ended: {handle.end.status}")
    except AgentError:  # the sandbox ended first
        handle.close()
