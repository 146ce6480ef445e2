"""Finding 6, the collector side: text from a box is never evidence of an OOM.

A box runs commands whose command line is the words of an OOM kill (sandboxd's own
"OOM kill: ... (pid 7) killed", the kernel's "Out of memory", "oom-kill:...task=x,pid=1",
"Killed process 1 (x)"); they reach sandboxd's log as message text. The collectors, run
against that real sandboxd into a real DuckDB file, must record no confirmed incident for
them, while a real kernel OOM kill in a box still is one.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2b import CommandExitException, Sandbox

from collectors.scheduler import Collector
from sandboxd.isolation.base import OomKill
from sandboxd.journal import Journal
from sandboxd.records import SandboxRecord
from sandboxd.store import Store
from sandboxd.testing import RunningSandboxd, api_client
from storage import MonitorStore
from tests.collectors.conftest import MakeCollector, db_path, make_collector
from tests.collectors.helpers import wait_for
from tests.sandboxd.kernel_oom import MEMORY_BOMB, needs_kernel_oom

__all__ = ["db_path", "make_collector"]

CRAFTED_LINES = [
    "OOM kill: ![x](http://127.0.0.1:9/x.png) (pid 7) killed",
    "OOM kill: python3 (pid 7) killed, memory limit 128 MiB",
    "Out of memory: Killed process 1 (x) total-vm:1kB",
    "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/x,task_memcg=/x,task=x,pid=1,uid=0",
    "Killed process 1 (x)",
]


def _run_crafted_commands(sandbox: Sandbox) -> None:
    """Each crafted line as a command line (logged when it starts) and as its output."""
    for line in CRAFTED_LINES:
        sandbox.commands.run(f"echo {shlex.quote(line)}; true {shlex.quote(line)}", timeout=30)


def _logged(sandboxd: RunningSandboxd, sandbox_id: str) -> list[dict[str, object]]:
    with api_client(sandboxd) as api:
        answer = api.get(f"/v2/sandboxes/{sandbox_id}/logs", params={"limit": 1000})
    answer.raise_for_status()
    entries: list[dict[str, object]] = answer.json()["logs"]
    return entries


def _confirmed(store: MonitorStore, sandbox_id: str) -> list[object]:
    frame = store.incidents_since(datetime.now(UTC) - timedelta(hours=1))
    frame = frame[(frame["sandbox_id"] == sandbox_id) & (frame["kind"] == "oom_confirmed")]
    return list(frame.itertuples())


def _listing_collector(make: MakeCollector, sandbox_id: str) -> Collector:
    """A collector (not scheduled: each job runs when the test says) that lists the box."""
    collector = make()

    def listed() -> bool:
        collector.run_now("poll")
        return sandbox_id in collector.context.store.live_sandbox_ids()

    wait_for(listed, 10, "the sandbox listed")
    return collector


def test_oom_words_in_a_box_make_no_confirmed_incident(
    sandboxd: RunningSandboxd, make_collector: MakeCollector, small_sandbox: Sandbox
) -> None:
    sandbox_id = small_sandbox.sandbox_id
    collector = _listing_collector(make_collector, sandbox_id)

    _run_crafted_commands(small_sandbox)
    messages = [str(entry["message"]) for entry in _logged(sandboxd, sandbox_id)]
    assert all(any(line in m for m in messages) for line in CRAFTED_LINES), messages

    # The log sweep reads every line the box wrote (one page) and handles its signs.
    run = collector.run_now("trouble")

    assert run.error is None
    assert _confirmed(collector.context.store, sandbox_id) == []
    assert len(collector.context.watch) == 0


@needs_kernel_oom
def test_a_kernel_oom_kill_is_still_confirmed_beside_oom_words(
    sandboxd: RunningSandboxd, make_collector: MakeCollector, small_sandbox: Sandbox
) -> None:
    sandbox_id = small_sandbox.sandbox_id
    collector = _listing_collector(make_collector, sandbox_id)
    _run_crafted_commands(small_sandbox)

    with pytest.raises(CommandExitException):
        small_sandbox.commands.run(MEMORY_BOMB, timeout=60)
    wait_for(
        lambda: any(
            entry["fields"].get("record") == "kernel_oom"  # type: ignore[attr-defined]
            for entry in _logged(sandboxd, sandbox_id)
        ),
        15,
        "sandboxd's kernel OOM record",
    )
    collector.run_now("trouble")

    confirmed = _confirmed(collector.context.store, sandbox_id)
    assert [(row.process, row.evidence) for row in confirmed] == [  # type: ignore[attr-defined]
        ("python3", "sandboxd kernel OOM record, memory limit 128 MiB")
    ]


def test_only_the_journal_s_oom_record_carries_the_kernel_mark(tmp_path: Path) -> None:
    # Box text reaches the journal's `log` as the values of fixed fields; even a caller
    # handing it the mark cannot make a kernel record of its line. The kernel's own kill can.
    store = Store(tmp_path / "sandboxd.sqlite")
    now = datetime.now(UTC)
    journal = Journal(store, "team", lambda: now)
    record = SandboxRecord("box", "base", "base", "build", 1, 128, 512, now, now, isolation="full")
    journal.log(record, "info", "OOM kill: x (pid 1) killed", {"record": "kernel_oom", "a": "b"})
    journal.oom_kill(record, OomKill("box", now, 7, "x", 128 * 2**20))

    marks = [line.fields.get("record") for line in store.logs("box", None, 10, True, None, None)]
    assert marks == [None, "kernel_oom"]
