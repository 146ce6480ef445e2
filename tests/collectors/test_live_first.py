"""Live first: a live OOM is recorded by the next trouble run, whatever history waits.

Issue 9, finding 10: the trouble job took its signs oldest first, so a monitor started
against an API with a day of past ends handled hundreds of old ends before the OOM kill
in a live sandbox. These tests check order (what the next run takes and records), never
timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors import oom, parse
from collectors.config import CollectorConfig
from collectors.scheduler import Collector
from collectors.work import Trouble, TroubleWatch
from e2bapi import AsyncE2BClient, E2BClient, RetryPolicy
from e2bapi.models.logs import SandboxLogEntry
from storage import MonitorStore
from storage.rows import SandboxRow

LIVE_ID = "livelivelivelivelive"
BACKLOG = 5000


def old_ends(now: datetime, count: int = BACKLOG) -> Iterator[Trouble]:
    """`count` ends of other sandboxes, a day before `now` and older, one a second."""
    for index in range(count):
        at = now - timedelta(days=1, seconds=index)
        yield Trouble(f"ended{index:015d}", "ended", at, end_reason=None)


def sandboxd_oom_entry(at: datetime) -> dict[str, Any]:
    """sandboxd's own record of a kernel OOM kill at `at`, as its logs call returns it
    (the structured form `sandboxd.journal` writes, `record` field included)."""
    entry = {
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": "error",
        "message": "OOM kill: python3 (pid 4242) killed, memory limit 128 MiB",
        "fields": {
            "process": "python3",
            "pid": "4242",
            "memory_limit_bytes": str(128 * 2**20),
            "at": at.isoformat(),
            "record": "kernel_oom",
        },
    }
    row = parse.log_line_rows(LIVE_ID, [SandboxLogEntry.model_validate(entry)])
    assert oom.confirmed_from_logs(row, at), "collectors.oom no longer confirms sandboxd's record"
    return entry


def test_the_next_take_holds_a_live_oom_line_before_thousands_of_old_ends() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch()
    for end in old_ends(now):
        watch.flag(end)
    live_oom = Trouble(LIVE_ID, "oom_line", now - timedelta(seconds=2))
    watch.flag(live_oom)

    assert live_oom in watch.take(20, history_limit=5)


def clock_at(now: datetime) -> Callable[[], datetime]:
    return lambda: now


def test_an_end_is_live_while_recent_and_history_after() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch(clock_at(now), live_window=timedelta(minutes=10))
    recent = Trouble("a", "ended", now - timedelta(minutes=9))
    old = Trouble("b", "ended", now - timedelta(minutes=11))
    old_oom_line = Trouble("c", "oom_line", now - timedelta(minutes=30))  # a live sandbox
    for sign in (recent, old, old_oom_line):
        watch.flag(sign)

    assert watch.waiting() == (2, 1)
    assert watch.take(2, history_limit=0) == [old_oom_line, recent]
    assert watch.take(2, history_limit=0) == []  # history waits when it gets no share
    assert watch.take(2, history_limit=1) == [old]


def test_history_drains_at_its_share_under_any_live_load() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch(clock_at(now))
    ends = list(old_ends(now, 50))
    for end in ends:
        watch.flag(end)

    for run in range(10):
        for index in range(30):  # more live signs than a run takes
            watch.flag(Trouble(f"live{index}", "memory_high", now - timedelta(seconds=run)))
        taken = watch.take(20, history_limit=5)
        assert [sign.kind for sign in taken] == ["memory_high"] * 15 + ["ended"] * 5
        # Newest first: the recent past is likelier to have its logs and samples still.
        assert [sign for sign in taken if sign.kind == "ended"] == ends[5 * run : 5 * run + 5]

    assert watch.waiting()[1] == 0


def test_history_never_takes_more_than_its_share_of_a_run() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch(clock_at(now))
    for end in old_ends(now, 50):
        watch.flag(end)

    assert len(watch.take(20, history_limit=5)) == 5
    assert len(watch.take(3, history_limit=5)) == 3
    assert watch.waiting() == (0, 42)


def test_history_keeps_the_newest_and_counts_what_it_forgets() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch(clock_at(now), history_kept=100)
    ends = list(old_ends(now, 150))
    for end in reversed(ends):  # oldest first, as the events job's pages are applied
        watch.flag(end)

    assert watch.waiting() == (0, 100)
    assert watch.dropped_history() == 50
    assert watch.dropped_history() == 0
    taken = watch.take(200, history_limit=200)
    assert taken == ends[:100]


def test_a_history_sign_put_back_after_a_failure_waits_in_history_again() -> None:
    now = datetime.now(UTC)
    watch = TroubleWatch(clock_at(now))
    (end,) = old_ends(now, 1)
    watch.flag(end)
    taken = watch.take(20, history_limit=5)

    watch.put_back(taken)

    assert watch.waiting() == (0, 1)
    watch.flag(end)  # flagged again while waiting: still once
    assert watch.take(20, history_limit=5) == [end]


class _Api:
    """An E2B API on `httpx.MockTransport`: one live sandbox whose log holds an OOM kill;
    every ended sandbox still has (empty) logs and samples, as on E2B."""

    def __init__(self, oom_at: datetime) -> None:
        self.oom_entry = sandboxd_oom_entry(oom_at)
        self.paths: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if path.endswith("/logs"):
            live = path == f"/v2/sandboxes/{LIVE_ID}/logs"
            return httpx.Response(200, json={"logs": [self.oom_entry] if live else []})
        if path.endswith("/metrics"):
            return httpx.Response(200, json=[])
        return httpx.Response(404, json={"code": 404, "message": f"no {path} here"})


@pytest.fixture
def api_and_collector(tmp_path: Path) -> Iterator[tuple[_Api, Collector]]:
    now = datetime.now(UTC)
    api = _Api(oom_at=now - timedelta(seconds=1))
    options: dict[str, Any] = {"team_id": "team", "retry": RetryPolicy(max_attempts=1)}
    base = "http://127.0.0.1:9"
    transport = httpx.MockTransport(api.handle)
    collector = Collector(
        MonitorStore.open(tmp_path / "monitor.duckdb"),
        E2BClient(httpx.Client(base_url=base, transport=transport), **options),
        AsyncE2BClient(httpx.AsyncClient(base_url=base, transport=transport), **options),
        CollectorConfig(),
    )
    started = now - timedelta(minutes=3)
    live = SandboxRow(
        LIVE_ID, "small", "small", "running", 1, 128, 64, started, now + timedelta(hours=1), {}, now
    )
    collector.context.store.upsert_sandboxes([live])
    yield api, collector
    collector.stop()


def test_the_next_trouble_run_records_a_live_oom_while_thousands_of_old_ends_wait(
    api_and_collector: tuple[_Api, Collector],
) -> None:
    api, collector = api_and_collector
    store = collector.context.store
    now = datetime.now(UTC)
    for end in old_ends(now):  # what the events job leaves on a first start
        collector.context.watch.flag(end)

    run = collector.run_now("trouble")

    assert run.error is None, run.error
    incidents = store.incidents_since(now - timedelta(minutes=5))
    assert list(zip(incidents["sandbox_id"], incidents["kind"], strict=True)) == [
        (LIVE_ID, "oom_confirmed")
    ]
    kept = store.logs_around(LIVE_ID, now, before=10, after=0)
    assert api.oom_entry["message"] in list(kept["message"])
    # History got its bounded share of the run (two calls a sign) and the rest still waits.
    history_calls = [path for path in api.paths if "/ended" in path]
    assert 0 < len(history_calls) <= 2 * collector.config.trouble_history_per_run
    assert len(collector.context.watch) >= BACKLOG - collector.config.trouble_history_per_run
