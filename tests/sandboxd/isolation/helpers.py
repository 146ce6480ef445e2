"""Helpers for the isolation tests: a bounded event loop, a small box spec, and a probe
program that runs in a box instead of the agent and executes Python sent on its stdin."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sandboxd.isolation.base import BoxSpec
from sandboxd.isolation.bwrap import bwrap_works, setpriv_argv
from sandboxd.isolation.cgroups import cgroups_available
from sandboxd.isolation.disk import MKFS
from sandboxd.isolation.full_box import FullBox
from sandboxd.isolation.reduced_box import ReducedBox
from sandboxd.isolation.seccomp import seccomp_available

T = TypeVar("T")
STEP_TIMEOUT_S = 10.0
# Reads one JSON-encoded Python snippet per line, runs it, answers with its `result`.
PROBE_SOURCE = r"""
import json, sys
print("ready", flush=True)
for line in sys.stdin:
    ns = {}
    try:
        exec(json.loads(line), ns)
        out = {"ok": True, "result": ns.get("result")}
    except BaseException as exc:
        out = {"ok": False, "error": repr(exc)}
    print(json.dumps(out), flush=True)
"""
PROBE = ["/usr/bin/python3", "-c", PROBE_SOURCE]
# A host uid range of its own, so a sandboxd running on this machine keeps its uids.
TEST_UID_BASE = 300_000 + (os.getpid() % 500) * 100
# Full boxes' id ranges (65,536 ids each): FULL_TEST_RANGES of them per test process (a
# finished box's unreaped process keeps its range busy until the test ends), far
# above the reduced ones and a default sandboxd's.
FULL_TEST_RANGES = 64
FULL_TEST_ID_BASE = 1_000_000_000 + (os.getpid() % 500) * FULL_TEST_RANGES * 65_536
# The probe in a full box: bwrap starts it as box root (where the agent starts), so it
# first becomes the box's user with no capability, as the agent does for every command.
AS_BOX_USER = [
    "/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--groups=1000",
    "--inh-caps=-all", "--bounding-set=-all",
]  # fmt: skip
FULL_PROBE = [*AS_BOX_USER, *PROBE]


def spec(sandbox_id: str = "box1", **overrides: Any) -> BoxSpec:
    """A small box: 1 CPU, 128 MB memory, 64 MB disk, 64 processes."""
    fields: dict[str, Any] = {
        "sandbox_id": sandbox_id,
        "cpu_count": 1,
        "memory_mb": 128,
        "disk_size_mb": 64,
        "max_processes": 64,
    }
    return BoxSpec(**(fields | overrides))


class Loop:
    """One event loop for a test; every step is bounded in time."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def run(self, coro: Awaitable[T], timeout_s: float = STEP_TIMEOUT_S) -> T:
        return self.runner.run(asyncio.wait_for(coro, timeout_s))


async def read_line(box: FullBox | ReducedBox, timeout_s: float = STEP_TIMEOUT_S) -> str:
    assert box.process.stdout is not None
    line = await asyncio.wait_for(box.process.stdout.readline(), timeout_s)
    return line.decode()


async def ask(box: FullBox | ReducedBox, code: str, timeout_s: float = STEP_TIMEOUT_S) -> Any:
    """Run `code` in the box's probe; returns its `result`, or raises with its error."""
    assert box.process.stdin is not None
    box.process.stdin.write(json.dumps(code).encode() + b"\n")
    await box.process.stdin.drain()
    answer = json.loads(await read_line(box, timeout_s))
    if not answer["ok"]:
        raise AssertionError(f"probe failed: {answer['error']}")
    return answer["result"]


def running(pid: int) -> bool:
    """True if `pid` is alive and not a zombie (the host's init reaps orphans lazily)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def full_skip_reason(parent: str) -> str | None:
    """Why full isolation cannot be tested here (None when it can)."""
    if os.geteuid() != 0:
        return "full isolation needs root"
    for ok, why in (
        cgroups_available(parent),
        bwrap_works(setpriv_argv(TEST_UID_BASE)),
        seccomp_available(),
        (os.access(MKFS, os.X_OK), f"{MKFS} is missing"),
    ):
        if not ok:
            return why
    return None


Launch = Callable[..., Any]
