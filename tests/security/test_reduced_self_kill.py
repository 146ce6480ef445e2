"""Without bwrap ("plain" reduced isolation) box code runs as its main process's uid and can
SIGKILL it. That must not pass for an OOM kill: the box counts no OOM kill (the manager ends
a sandbox with "oom" only on a count), and the manager logs the kill as a suspect only,
without counting it and without the field that marks sandboxd's kernel OOM records
(sandboxd/journal.py RECORD_FIELD)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandboxd.isolation.base import BoxSpec, OomKill
from sandboxd.isolation.polling import wait_until
from sandboxd.journal import RECORD_FIELD
from tests.security.managed_boxes import (
    RUNTIME_DIR,
    create,
    log_lines,
    managed_boxes,
    reduced_isolation,
)

TIMEOUT_S = 10.0
# The box's main process is box code that SIGKILLs itself, as code in a plain box may do to
# its agent.
SELF_KILL = ["/bin/sh", "-c", "kill -9 $$"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_self_inflicted_sigkill_is_no_oom_kill(tmp_path: Path) -> None:
    isolation = reduced_isolation(tmp_path / "data", use_bwrap=False)
    suspected = threading.Event()
    isolation.on_oom(lambda _: suspected.set())
    spec = BoxSpec("selfkill", cpu_count=1, memory_mb=128, disk_size_mb=64, max_processes=8)
    box = await isolation.launch(spec, SELF_KILL)
    try:
        assert await asyncio.wait_for(box.process.wait(), TIMEOUT_S) in (-9, 137)
        await wait_until(suspected.is_set, TIMEOUT_S, "the kill to be reported")

        assert box.oom_kill_count() == 0
    finally:
        await box.destroy()
        isolation.close()
        shutil.rmtree(RUNTIME_DIR, ignore_errors=True)


@pytest.mark.anyio
async def test_a_reported_kill_in_reduced_mode_is_logged_as_a_suspect(tmp_path: Path) -> None:
    async with managed_boxes(tmp_path / "data") as manager:
        record = await create(manager)
        pid = manager.live[record.sandbox_id].box.process.pid
        manager.record_oom(OomKill(record.sandbox_id, datetime.now(UTC), pid, None, 512 << 20))
        lines = log_lines(manager, record.sandbox_id)

    suspects = [msg for _, msg, _ in lines if msg.startswith("suspected OOM kill, not confirmed")]
    assert len(suspects) == 1 and str(pid) in suspects[0], lines
    assert not [msg for _, msg, _ in lines if msg.startswith("OOM kill")]
    assert not [fields for _, _, fields in lines if RECORD_FIELD in fields]
    assert record.oom_kills == 0
