"""A sandboxd manager in the test's own process, on real reduced-isolation boxes (bwrap, or
"plain" without it), with a real SQLite store: for attacks that need an agent of the test's
making, or the plain mode that sandboxd picks only where bwrap cannot run."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sandboxd.isolation.bwrap import bwrap_works, setpriv_argv
from sandboxd.isolation.paths import RUNTIME_ROOT
from sandboxd.isolation.reduced import ReducedIsolation
from sandboxd.isolation.uids import HostUidPool
from sandboxd.manager import SandboxManager
from sandboxd.planning import CreateRequest
from sandboxd.records import SandboxRecord
from sandboxd.store import Store

# Box uids of these tests' own, apart from every other test module's range.
UID_BASE = 600_000 + (os.getpid() % 500) * 20
UID_COUNT = 20
END_TIMEOUT_S = 30.0
# Plain boxes' homes: a place every box uid may walk through (pytest's tmp dirs are 0700).
RUNTIME_DIR = RUNTIME_ROOT / "reduced" / f"security-test-{os.getpid()}"


@asynccontextmanager
async def managed_boxes(
    data_dir: Path, *, use_bwrap: bool = True, agent_script: Path | None = None
) -> AsyncIterator[SandboxManager]:
    """A started manager over reduced isolation (each box its own uid as root); every
    sandbox is killed and the isolation closed after. Skips where bwrap cannot run."""
    isolation = reduced_isolation(data_dir, use_bwrap=use_bwrap, agent_script=agent_script)
    manager = SandboxManager(
        isolation=isolation, store=Store(data_dir / "store.db"), team_id="team-test",
        max_sandboxes=2, max_length_s=3600, max_processes=64,
    )  # fmt: skip
    await manager.start()
    try:
        yield manager
    finally:
        await manager.shutdown()
        shutil.rmtree(RUNTIME_DIR, ignore_errors=True)  # plain boxes' homes, if any is left


def reduced_isolation(
    data_dir: Path, *, use_bwrap: bool = True, agent_script: Path | None = None
) -> ReducedIsolation:
    """Reduced isolation as sandboxd makes it (each box its own uid as root); skips where
    bwrap cannot run. The caller destroys its boxes; plain homes are under RUNTIME_DIR."""
    root = os.geteuid() == 0
    if use_bwrap:
        ok, why = bwrap_works(setpriv_argv(UID_BASE) if root else ())
        if not ok:
            pytest.skip(why)
    return ReducedIsolation(
        data_dir, use_bwrap=use_bwrap, reasons=["forced by the test"],
        agent_script=agent_script, host_uids=HostUidPool(UID_BASE, UID_COUNT) if root else None,
        runtime_dir=RUNTIME_DIR,
    )  # fmt: skip


async def create(manager: SandboxManager) -> SandboxRecord:
    """A new `base` sandbox for a minute."""
    return await manager.create(CreateRequest(template="base", timeout_s=60))


async def killed_event(manager: SandboxManager, sandbox_id: str) -> dict[str, Any]:
    """Wait (bounded) until the sandbox's agent watcher has ended it (box killed and
    destroyed, pipes closed); return its killed event. Call it while the sandbox lives."""
    watcher = manager.live[sandbox_id].watcher
    assert watcher is not None
    await asyncio.wait_for(asyncio.shield(watcher), END_TIMEOUT_S)
    assert sandbox_id not in manager.live
    found = manager.store.events(sandbox_id, ["sandbox.lifecycle.killed"], 0, 10, False)
    assert len(found) == 1, found
    return found[0]


def log_lines(manager: SandboxManager, sandbox_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(level, message, fields) of every line of the sandbox's log, oldest first."""
    lines = manager.store.logs(sandbox_id, None, 1000, True, None, None)
    return [(line.level, line.message, line.fields) for line in lines]
