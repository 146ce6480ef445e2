"""The scheduled collector against a real sandboxd and a real DuckDB file.

sandboxd samples every second here and every job runs every 0.5 s (slow and maintenance
every 2 s), so what takes minutes in production takes seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import CommandExitException, Sandbox

from storage import MonitorStore
from tests.collectors.conftest import MakeCollector
from tests.collectors.helpers import assert_nothing_doubled, query, wait_for
from tests.sandboxd.kernel_oom import MEMORY_BOMB, needs_kernel_oom

# Holds ~112 of 128 MiB for 3 s, then exits: near the limit, then a drop.
# Held 6 s near the limit: on a loaded machine the 1 s sampler and the poll may skip a beat,
# and the suspected incident needs one sample at the peak before the drop.
MEMORY_HOG = (
    "python3 -c 'import time\na = []\n"
    "for _ in range(14):\n a.append(bytearray(8 * 2**20)); time.sleep(0.1)\ntime.sleep(6)'"
)


def test_sandboxes_appear_and_samples_keep_arriving(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], db_path: Path
) -> None:
    ids = [new_sandbox(), new_sandbox("small")]
    collector = make_collector()
    store = collector.context.store
    collector.start()

    wait_for(lambda: set(ids) <= store.live_sandbox_ids(), 10, "both sandboxes listed")
    first = wait_for(lambda: _all_sampled(store.last_sample_at(ids), ids), 10, "samples")
    wait_for(
        lambda: all(store.last_sample_at(ids)[i] >= first[i] + timedelta(seconds=2) for i in ids),
        10,
        "newer samples",
    )
    small = store.sandbox_record(ids[1])
    assert small is not None and (small.template_id, small.memory_mb) == ("small", 128)
    assert len(store.team_peaks()) == 6  # 2 metrics x (1 h, 24 h, 7 d)
    collector.stop()

    per_second = query(
        db_path,
        "SELECT count(DISTINCT ts) FROM samples WHERE sandbox_id = ? AND ts >= ?",
        [ids[0], first[ids[0]]],
    )[0][0]
    assert per_second >= 2
    assert query(db_path, "SELECT count(*) FROM team_samples")[0][0] > 0
    assert_nothing_doubled(db_path)
    runs = query(
        db_path, "SELECT job, count(*) FROM collector_runs WHERE error IS NULL GROUP BY job"
    )
    assert {job for job, _ in runs} == set(collector.job_names)


def test_a_paused_sandbox_yields_no_samples(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], api: httpx.Client
) -> None:
    running, paused = new_sandbox(), new_sandbox()
    collector = make_collector()
    store = collector.context.store
    collector.start()
    wait_for(lambda: _all_sampled(store.last_sample_at([paused]), [paused]), 10, "a sample")

    api.post(f"/sandboxes/{paused}/pause").raise_for_status()
    paused_at = datetime.now(UTC)
    wait_for(lambda: _state(store.sandbox_record(paused)) == "paused", 10, "the pause noticed")
    settled = store.last_sample_at([paused])[paused]
    time.sleep(2.0)

    assert store.last_sample_at([paused])[paused] == settled
    assert settled <= paused_at
    assert store.last_sample_at([running])[running] > settled  # the other kept going


def test_a_killed_sandbox_is_marked_ended_with_its_reason(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], api: httpx.Client
) -> None:
    killed, timed_out = new_sandbox(), new_sandbox(timeout_s=3)
    collector = make_collector()
    store = collector.context.store
    collector.start()
    wait_for(lambda: {killed, timed_out} <= store.live_sandbox_ids(), 10, "both listed")

    api.delete(f"/sandboxes/{killed}").raise_for_status()

    def ends() -> dict[str, tuple[object, object]]:
        frame = store.sandboxes(include_ended=True)
        frame = frame[frame["ended"] & frame["end_reason"].notna()]
        return {row.sandbox_id: (row.end_reason, row.ended_at) for row in frame.itertuples()}

    found = wait_for(
        lambda: ends() if {killed, timed_out} <= set(ends()) else None, 15, "both ended"
    )
    assert found[killed][0] == "killed by API"
    assert found[timed_out][0] == "timeout"
    assert {killed, timed_out}.isdisjoint(store.live_sandbox_ids())


@needs_kernel_oom
def test_an_oom_kill_becomes_an_incident_with_the_log_lines_before_it(
    make_collector: MakeCollector, small_sandbox: Sandbox
) -> None:
    collector = make_collector()
    store = collector.context.store
    sandbox_id = small_sandbox.sandbox_id
    collector.start()
    wait_for(lambda: sandbox_id in store.live_sandbox_ids(), 10, "the sandbox listed")

    with pytest.raises(CommandExitException):
        small_sandbox.commands.run(MEMORY_BOMB, timeout=60)

    incident = _wait_for_incident(store, sandbox_id, "oom_confirmed")
    assert incident.process == "python3" and incident.pid
    assert incident.mem_total_bytes == 128 * 2**20

    # The incident and its OOM line are kept at once (live first); the lines before the kill
    # follow when the trouble job reaches the sign.
    def messages_around_kill() -> list[str]:
        lines = store.logs_around(
            sandbox_id, incident.occurred_at.to_pydatetime(), before=20, after=5
        )
        return list(lines["message"])

    def bomb_start_kept() -> bool:
        return any("started" in m and "bytearray" in m for m in messages_around_kill())

    wait_for(bomb_start_kept, 30, "the log lines before the kill kept")
    messages = messages_around_kill()
    bomb_started = next(i for i, m in enumerate(messages) if "started" in m and "bytearray" in m)
    oom_line = next(i for i, m in enumerate(messages) if m.startswith("OOM kill: python3"))
    assert bomb_started < oom_line
    assert small_sandbox.commands.run("echo alive").stdout.strip() == "alive"


@needs_kernel_oom
def test_memory_near_its_limit_then_a_drop_is_a_suspected_incident(
    make_collector: MakeCollector, small_sandbox: Sandbox
) -> None:
    collector = make_collector()
    store = collector.context.store
    sandbox_id = small_sandbox.sandbox_id
    collector.start()
    wait_for(lambda: sandbox_id in store.live_sandbox_ids(), 10, "the sandbox listed")

    small_sandbox.commands.run(MEMORY_HOG, timeout=60)

    incident = _wait_for_incident(store, sandbox_id, "oom_suspected")
    assert incident.mem_used_bytes >= 0.9 * incident.mem_total_bytes
    lines = store.logs_around(sandbox_id, incident.occurred_at.to_pydatetime(), before=20, after=5)
    assert any("started" in m and "bytearray" in m for m in lines["message"])


def _wait_for_incident(store: MonitorStore, sandbox_id: str, kind: str) -> Any:
    """The sandbox's first incident of `kind` in the last 5 minutes, waited for up to 45 s
    (a busy machine delays the collector's polls; a quiet one finds it in about a second)."""

    def found() -> list[Any]:
        frame = store.incidents_since(datetime.now(UTC) - timedelta(minutes=5))
        frame = frame[(frame["sandbox_id"] == sandbox_id) & (frame["kind"] == kind)]
        return list(frame.itertuples())

    return wait_for(found, 45, f"an {kind} incident")[0]


def _all_sampled(found: dict[str, datetime], ids: list[str]) -> dict[str, datetime] | None:
    return found if set(ids) <= set(found) else None


def _state(row: object) -> str | None:
    return getattr(row, "state", None)
