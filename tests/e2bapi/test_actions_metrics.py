"""Metric actions and team-ID discovery: queries, batch splitting and concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from e2bapi import AsyncE2BClient, actions
from e2bapi.errors import MissingSettingError
from e2bapi.models.metrics import MaxTeamMetric, SandboxMetric, TeamMaxMetricName, TeamMetric
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import BASE_URL, FakeAPI, json_response

SID = payloads.SANDBOX_ID
TEAM_ID = payloads.TEAM_ID
# 2026-11-26T10:00:00Z
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
START_UNIX_S = 1_795_687_200


def metrics_for_requested_ids(
    without_data: Collection[str] = (),
) -> Callable[[httpx.Request], httpx.Response]:
    """An answer function: the latest sample of every requested ID, minus `without_data`."""

    def answer(request: httpx.Request) -> httpx.Response:
        requested = request.url.params["sandbox_ids"].split(",")
        with_data = [sandbox_id for sandbox_id in requested if sandbox_id not in without_data]
        return json_response(200, payloads.sandboxes_with_metrics(with_data))

    return answer


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(
            START,
            START + timedelta(hours=1),
            {"start": str(START_UNIX_S), "end": str(START_UNIX_S + 3600)},
            id="utc",
        ),
        pytest.param(
            datetime(2026, 11, 26, 12, 0, 30, 999_999, tzinfo=timezone(timedelta(hours=2))),
            None,
            {"start": str(START_UNIX_S + 30)},
            id="other-zone-truncated-to-seconds",
        ),
        pytest.param(None, START, {"end": str(START_UNIX_S)}, id="end-only"),
        pytest.param(None, None, {}, id="no-range"),
    ],
)
def test_sandbox_metrics_sends_the_range_in_unix_seconds(
    start: datetime | None, end: datetime | None, expected: dict[str, str]
) -> None:
    api = FakeAPI().on(
        "GET",
        f"/sandboxes/{SID}/metrics",
        json_response(200, [payloads.sandbox_metric(), payloads.sandbox_metric(1_795_000_005)]),
    )

    samples = api.client().run(actions.sandbox_metrics(SID, start=start, end=end))

    assert dict(api.requests[0].url.params) == expected
    assert [sample.timestamp_unix for sample in samples] == [1_795_000_000, 1_795_000_005]
    assert isinstance(samples[0], SandboxMetric)
    assert samples[0].mem_used_bytes == 268_435_456
    assert samples[0].cpu_used_pct == 37.5


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        pytest.param(datetime(2026, 11, 26, 10), None, "time zone", id="naive-start"),
        pytest.param(START, datetime(2026, 11, 26, 11), "time zone", id="naive-end"),
        pytest.param(START, START - timedelta(seconds=1), "before start", id="end-before-start"),
    ],
)
def test_sandbox_metrics_refuses_a_bad_range_before_any_request(
    start: datetime, end: datetime | None, problem: str
) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match=problem):
        api.client().run(actions.sandbox_metrics(SID, start=start, end=end))
    assert api.requests == []


def test_batch_metrics_splits_250_ids_into_requests_of_at_most_100_unique_ids() -> None:
    """Duplicates are sent once; the answers are merged; IDs without data stay absent."""
    unique_ids = [f"sb{index:03d}" for index in range(230)]
    ids = unique_ids + unique_ids[:20]  # 250 IDs, 20 of them repeated
    without_data = {"sb007", "sb150", "sb229"}
    api = FakeAPI().on("GET", "/sandboxes/metrics", metrics_for_requested_ids(without_data))

    latest = api.client().run(actions.sandboxes_metrics(ids))

    chunks = [r.url.params["sandbox_ids"].split(",") for r in api.requests]
    assert [len(chunk) for chunk in chunks] == [100, 100, 30]
    sent = [sandbox_id for chunk in chunks for sandbox_id in chunk]
    assert sent == unique_ids  # every ID once, in the caller's order
    assert set(latest) == set(unique_ids) - without_data
    assert all(isinstance(sample, SandboxMetric) for sample in latest.values())


def test_batch_metrics_of_100_ids_is_one_request() -> None:
    api = FakeAPI().on("GET", "/sandboxes/metrics", metrics_for_requested_ids())

    latest = api.client().run(actions.sandboxes_metrics([f"sb{i}" for i in range(100)]))

    assert len(api.requests) == 1
    assert len(latest) == 100


@pytest.mark.parametrize(("max_concurrency", "expected_peak"), [(10, 3), (2, 2)])
def test_async_batch_metrics_sends_the_chunks_concurrently(
    max_concurrency: int, expected_peak: int
) -> None:
    """Each request waits until `expected_peak` are in flight at once (1 s at most), then
    yields a few times so a client without a concurrency bound would let the rest in too."""

    async def scenario() -> tuple[int, bool, dict[str, object]]:
        enough_in_flight = asyncio.Event()
        in_flight = peak = 0
        timed_out = False

        async def handler(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak, timed_out
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight >= expected_peak:
                enough_in_flight.set()
            try:
                await asyncio.wait_for(enough_in_flight.wait(), timeout=1.0)
            except TimeoutError:
                timed_out = True
            for _ in range(5):
                await asyncio.sleep(0)
            in_flight -= 1
            requested = request.url.params["sandbox_ids"].split(",")
            return json_response(200, payloads.sandboxes_with_metrics(requested))

        async with httpx.AsyncClient(
            base_url=BASE_URL, transport=httpx.MockTransport(handler)
        ) as http:
            client = AsyncE2BClient(http, max_concurrency=max_concurrency)
            latest = await client.run(
                actions.sandboxes_metrics([f"sb{index:03d}" for index in range(250)])
            )
        return peak, timed_out, dict(latest)

    peak, timed_out, latest = asyncio.run(scenario())

    assert not timed_out
    assert peak == expected_peak
    assert len(latest) == 250


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_batch_metrics_of_no_ids_is_empty_without_a_request(kind: str) -> None:
    api = FakeAPI()
    action = actions.sandboxes_metrics([])

    if kind == "sync":
        latest = api.client().run(action)
    else:
        latest = asyncio.run(api.async_client().run(action))

    assert latest == {}
    assert api.requests == []


def test_team_metrics_sends_the_range_and_reads_the_buckets() -> None:
    api = FakeAPI().on(
        "GET", f"/teams/{TEAM_ID}/metrics", json_response(200, [payloads.team_metric()])
    )

    buckets = api.client().run(
        actions.team_metrics(TEAM_ID, start=START, end=START + timedelta(days=1))
    )

    assert dict(api.requests[0].url.params) == {
        "start": str(START_UNIX_S),
        "end": str(START_UNIX_S + 86_400),
    }
    assert isinstance(buckets[0], TeamMetric)
    assert buckets[0].concurrent_sandboxes == 7
    assert buckets[0].sandbox_start_rate == 0.2


def test_team_metrics_refuses_a_naive_start() -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="time zone"):
        api.client().run(actions.team_metrics(TEAM_ID, start=datetime(2026, 11, 26)))
    assert api.requests == []


@pytest.mark.parametrize("metric", ["concurrent_sandboxes", "sandbox_start_rate"])
def test_team_max_metric_names_the_metric_in_the_query(metric: TeamMaxMetricName) -> None:
    api = FakeAPI().on(
        "GET", f"/teams/{TEAM_ID}/metrics/max", json_response(200, payloads.max_team_metric())
    )

    peak = api.client().run(actions.team_max_metric(TEAM_ID, metric, start=START))

    assert api.requests[0].url.params["metric"] == metric
    assert api.requests[0].url.params["start"] == str(START_UNIX_S)
    assert isinstance(peak, MaxTeamMetric)
    assert peak.value == 12


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resolve_team_id_learns_it_from_the_newest_event_once(kind: str) -> None:
    api = FakeAPI().on("GET", "/events/sandboxes", json_response(200, [payloads.sandbox_event()]))

    if kind == "sync":
        client = api.client()
        team_ids = [client.resolve_team_id(), client.resolve_team_id()]
    else:
        async_client = api.async_client()

        async def twice() -> list[str]:
            return [await async_client.resolve_team_id(), await async_client.resolve_team_id()]

        team_ids = asyncio.run(twice())

    assert team_ids == [TEAM_ID, TEAM_ID]
    assert len(api.requests) == 1  # the second call used the cached ID
    params = api.requests[0].url.params
    assert params["limit"] == "1"
    assert params["orderAsc"] == "false"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_resolve_team_id_without_events_names_the_setting(kind: str) -> None:
    api = FakeAPI().on("GET", "/events/sandboxes", json_response(200, []))

    with pytest.raises(MissingSettingError, match="E2B_TEAM_ID") as raised:
        if kind == "sync":
            api.client().resolve_team_id()
        else:
            asyncio.run(api.async_client().resolve_team_id())

    assert raised.value.setting == "E2B_TEAM_ID"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_configured_team_id_needs_no_request(kind: str) -> None:
    api = FakeAPI()

    if kind == "sync":
        team_id = api.client(team_id="team-from-settings").resolve_team_id()
    else:
        team_id = asyncio.run(api.async_client(team_id="team-from-settings").resolve_team_id())

    assert team_id == "team-from-settings"
    assert api.requests == []
