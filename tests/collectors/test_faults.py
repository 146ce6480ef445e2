"""Faults between the collector and a real sandboxd: nothing crashes, nothing is doubled,
and the runs table says what happened.

Most tests run the jobs one at a time (`Collector.run_now`, the scheduler's own wrapper)
for a fixed order; the rate-limit test runs the scheduler to see one job slow down while
the others keep their pace.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd

from storage import MonitorStore
from tests.collectors.conftest import MakeCollector
from tests.collectors.faults import FaultyAPI, Slow, down, garbage, on_path, rate_limited
from tests.collectors.helpers import assert_nothing_doubled, query, sampled_seconds, wait_for

LIST = "/v2/sandboxes"
BATCH = "/sandboxes/metrics"


def test_api_down_for_a_while_then_back_the_backfill_fills_the_gap(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], db_path: Path
) -> None:
    sandbox_id = new_sandbox()
    faults = FaultyAPI()
    collector = make_collector(faults=faults)
    for job in ("poll", "backfill"):
        assert collector.run_now(job).error is None
    faults.add(down)
    time.sleep(0.6)
    failed = collector.run_now("poll")
    time.sleep(3.0)  # sandboxd keeps sampling; nobody collects
    failed_again = collector.run_now("poll")
    faults.clear()
    time.sleep(0.6)
    back = collector.run_now("poll")
    backfilled = collector.run_now("backfill")
    collector.stop()

    assert failed.error is not None and failed.error.startswith("TransportError")
    assert failed_again.error is not None and failed.rows_written == 0
    assert back.error is None
    assert backfilled.error is None and backfilled.rows_written >= 2
    seconds = sampled_seconds(db_path, sandbox_id)
    # sandboxd samples every second: every second from the first sample on is stored.
    assert seconds == list(range(seconds[0], seconds[-1] + 1))
    assert_nothing_doubled(db_path)
    errors = query(
        db_path, "SELECT error FROM collector_runs WHERE job = 'poll' ORDER BY started_at"
    )
    assert [e is None for (e,) in errors] == [True, False, False, True]


def latest_poll_run(store: MonitorStore) -> dict[str, object] | None:
    """The poll job's row of the freshness table (its latest run); None before its first."""
    fresh = store.data_freshness(datetime.now(UTC))
    rows: list[dict[str, object]] = fresh[fresh["job"] == "poll"].to_dict("records")
    return rows[0] if rows else None


def test_a_429_storm_slows_that_job_per_retry_after_and_not_the_others(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], db_path: Path
) -> None:
    new_sandbox()
    faults = FaultyAPI()
    collector = make_collector(faults=faults)
    collector.start()
    store = collector.context.store
    wait_for(lambda: latest_poll_run(store), 5, "a first poll")
    storm_start = datetime.now(UTC)
    faults.add(on_path(LIST, rate_limited(2.0)))
    time.sleep(6.0)
    faults.clear()
    storm_end = datetime.now(UTC)
    wait_for(
        lambda: (run := latest_poll_run(store)) and pd.isna(run["last_error"]), 5, "polls again"
    )
    collector.stop()

    in_storm = "started_at BETWEEN ? AND ?"
    window = [storm_start, storm_end]
    polls = query(
        db_path,
        f"SELECT started_at, error, retry_after_s FROM collector_runs "
        f"WHERE job = 'poll' AND {in_storm} ORDER BY started_at",
        window,
    )
    assert 2 <= len(polls) <= 4  # every 2 s (Retry-After), not every 0.5 s
    assert all(error and "RateLimitedError" in error for _, error, _ in polls)
    assert all(retry_after == 2.0 for _, _, retry_after in polls)
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(polls)]
    assert min(gaps) >= 1.9
    for job in ("events", "team"):
        (ok,) = query(
            db_path,
            f"SELECT count(*) FROM collector_runs WHERE job = ? AND error IS NULL AND {in_storm}",
            [job, *window],
        )[0]
        assert ok >= 8, f"{job} ran {ok} times in the storm"


def test_answers_slower_than_the_timeout_fail_the_run_and_nothing_else(
    make_collector: MakeCollector,
    new_sandbox: Callable[..., str],
    api: httpx.Client,
    db_path: Path,
) -> None:
    sandbox_id = new_sandbox()
    wait_for(lambda: api.get(f"/sandboxes/{sandbox_id}/metrics").json(), 5, "a first sample")
    faults = FaultyAPI()
    collector = make_collector(faults=faults, request_timeout_s=0.5)
    faults.add(on_path(BATCH, lambda request: Slow(0.6)))
    started = time.monotonic()
    slow = collector.run_now("poll")
    took_s = time.monotonic() - started
    faults.clear()
    fine = collector.run_now("poll")
    events = collector.run_now("events")
    collector.stop()

    assert slow.error is not None and "ReadTimeout" in slow.error
    assert slow.rows_written == 1  # the sandbox's details were stored before the metrics
    assert took_s < 3
    assert fine.error is None and events.error is None
    assert query(db_path, "SELECT count(*) FROM samples WHERE sandbox_id = ?", [sandbox_id]) == [
        (1,)
    ]
    assert_nothing_doubled(db_path)


def test_malformed_answers_are_recorded_as_bad_payloads(
    make_collector: MakeCollector, new_sandbox: Callable[..., str], db_path: Path
) -> None:
    new_sandbox()
    faults = FaultyAPI()
    collector = make_collector(faults=faults)
    faults.add(on_path(BATCH, garbage(b'{"sandboxes": {"i3k9": ')))
    truncated = collector.run_now("poll")
    faults.clear()
    faults.add(on_path(LIST, garbage(b'[{"sandboxID": 7}]')))
    wrong_type = collector.run_now("poll")
    faults.clear()
    faults.add(on_path("/events/sandboxes", garbage(b"<html>502 Bad Gateway</html>")))
    not_json = collector.run_now("events")
    faults.clear()
    recovered = [collector.run_now(job) for job in ("poll", "events")]
    collector.stop()

    assert truncated.error is not None and "BadPayloadError" in truncated.error
    assert "not JSON" in truncated.error
    assert wrong_type.error is not None and "[0]" in wrong_type.error
    assert not_json.error is not None and "BadPayloadError" in not_json.error
    assert all(run.error is None and run.rows_written > 0 for run in recovered)
    assert_nothing_doubled(db_path)


def test_a_sandbox_that_vanishes_between_list_and_metrics(
    make_collector: MakeCollector,
    new_sandbox: Callable[..., str],
    api: httpx.Client,
    db_path: Path,
) -> None:
    stays, vanishes = new_sandbox(), new_sandbox()
    faults = FaultyAPI()
    collector = make_collector(faults=faults)
    time.sleep(1.1)  # both sampled at least once
    assert collector.run_now("poll").error is None

    def kill_after_the_list(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == LIST:
            api.delete(f"/sandboxes/{vanishes}").raise_for_status()
        if request.url.path == BATCH:  # as E2B answers: no entry for an unknown ID
            body = json.loads(response.content)
            body["sandboxes"].pop(vanishes, None)
            return httpx.Response(200, json=body)
        return response

    faults.rewrite(kill_after_the_list)
    time.sleep(1.1)
    racing = collector.run_now("poll")
    faults.clear()
    time.sleep(1.1)
    after = collector.run_now("poll")
    store = collector.context.store
    ended = store.sandboxes(include_ended=True).set_index("sandbox_id")
    last = store.last_sample_at([stays, vanishes])
    collector.stop()

    assert racing.error is None and after.error is None
    assert ended.loc[vanishes, "ended"] and ended.loc[vanishes, "end_reason"] == "killed by API"
    assert not ended.loc[stays, "ended"]
    assert last[stays] - last[vanishes] >= timedelta(seconds=2)
    assert_nothing_doubled(db_path)
