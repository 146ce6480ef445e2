"""Issue 9: a sandbox's user cannot flood sandboxd's log store.

Every process started in a box is two lines in sandboxd's store (its start, its end), and the
command text is the user's. Starting 2,000 short processes as fast as the SDK allows must
leave at most the budget's burst plus its rate over the run, visible lines counting what
was dropped, and (once the sandbox ends) a count that adds up to every line the box caused.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

from e2b import AsyncSandbox

from sandboxd.log_budget import LOG_BURST_LINES, LOG_LINES_PER_S
from sandboxd.testing import RunningSandboxd

PROCESSES = 2000
LINES_CAUSED = 2 * PROCESSES  # a start and an end each
# Processes started at once: enough to go fast, well under envd's per-box call limit.
PARALLEL_STARTS = 8
FLOOD_TIMEOUT_S = 240


def _stored_lines(sandboxd: RunningSandboxd, sandbox_id: str) -> list[tuple[str, dict[str, str]]]:
    """(message, fields) of every line sandboxd stored for the sandbox, read from its file."""
    uri = f"file:{sandboxd.data_dir / 'sandboxd.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute(
            "SELECT message, fields FROM logs WHERE sandbox_id = ?", (sandbox_id,)
        ).fetchall()
    return [(message, json.loads(fields)) for message, fields in rows]


async def _flood(sandbox: AsyncSandbox) -> float:
    """Start PROCESSES `true`s, PARALLEL_STARTS at a time; returns the seconds it took."""
    gate = asyncio.Semaphore(PARALLEL_STARTS)

    async def one() -> None:
        async with gate:
            await sandbox.commands.run("true")

    started_s = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(PROCESSES))), FLOOD_TIMEOUT_S)
    return time.monotonic() - started_s


def test_starting_processes_in_a_loop_stores_a_bounded_count_and_says_how_many_were_dropped(
    sandboxd: RunningSandboxd, sdk_env: None
) -> None:
    async def attack() -> tuple[str, float]:
        sandbox = await AsyncSandbox.create(template="base", timeout=FLOOD_TIMEOUT_S + 60)
        try:
            return sandbox.sandbox_id, await _flood(sandbox)
        finally:
            await sandbox.kill()  # its end reports the last count of dropped lines

    sandbox_id, flood_s = asyncio.run(attack())
    lines = _stored_lines(sandboxd, sandbox_id)

    process_lines = [m for m, _ in lines if m.startswith("process ")]
    dropped_counts = [int(f["dropped_lines"]) for _, f in lines if "dropped_lines" in f]
    allowed = LOG_BURST_LINES + LOG_LINES_PER_S * flood_s + 2  # +2: the end may come late
    assert len(process_lines) <= allowed, f"{len(process_lines)} lines in {flood_s:.1f} s"
    assert dropped_counts, "no line says lines were dropped"
    notice = f"log lines dropped (over {LOG_LINES_PER_S:g} lines/s)"
    assert any(message.endswith(notice) for message, _ in lines)
    assert len(process_lines) + sum(dropped_counts) == LINES_CAUSED
