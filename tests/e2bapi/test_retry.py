"""When a failed call is sent again, after how long, and when the clients give up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from e2bapi import RetryPolicy, actions
from e2bapi.errors import (
    AuthenticationError,
    BadPayloadError,
    ConflictError,
    E2BError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)
from e2bapi.exchange import Call
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

SAFE = Call("GET", "/sandboxes/{sandboxID}", {"sandboxID": "sb"})
UNSAFE = Call("POST", "/sandboxes", retry_safe=False)
ENDPOINT = SAFE.endpoint


def policy(fraction: float = 1.0, **options: Any) -> RetryPolicy:
    return RetryPolicy(random_fraction=lambda: fraction, **options)


def rate_limited(retry_after_s: float | None) -> RateLimitedError:
    return RateLimitedError(ENDPOINT, 429, "slow down", retry_after_s=retry_after_s)


def server_error() -> ServerError:
    return ServerError(ENDPOINT, 500, "boom")


# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
def test_max_attempts_is_respected(max_attempts: int) -> None:
    retry = policy(max_attempts=max_attempts)

    delays = [
        retry.delay_before_retry_s(SAFE, server_error(), attempt)
        for attempt in range(1, max_attempts + 2)
    ]

    assert all(delay is not None for delay in delays[: max_attempts - 1])
    assert delays[max_attempts - 1 :] == [None, None]


def test_max_attempts_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    retry = policy(fraction=1.0, backoff_base_s=0.5, backoff_cap_s=8.0)

    assert [retry.backoff_s(attempt) for attempt in range(1, 8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        8.0,
        8.0,
    ]


@pytest.mark.parametrize(
    ("fraction", "expected_s"), [(0.0, 2.0), (0.5, 3.0), (0.999, 3.998), (1.0, 4.0)]
)
def test_jitter_stays_between_half_the_ceiling_and_the_ceiling(
    fraction: float, expected_s: float
) -> None:
    """Attempt 4 with base 0.5 s has a 4 s ceiling: the wait is in [2, 4] s."""
    retry = policy(fraction=fraction, backoff_base_s=0.5, backoff_cap_s=8.0)

    assert retry.backoff_s(4) == pytest.approx(expected_s)


def test_the_default_policy_jitters_within_bounds() -> None:
    retry = RetryPolicy()

    for attempt in range(1, 10):
        ceiling_s = min(8.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(20):
            assert ceiling_s / 2 <= retry.backoff_s(attempt) <= ceiling_s


@pytest.mark.parametrize(
    ("call", "error", "expected_s"),
    [
        pytest.param(UNSAFE, rate_limited(None), 0.5, id="429-backs-off-even-for-create"),
        pytest.param(SAFE, rate_limited(3.0), 3.0, id="429-waits-retry-after"),
        pytest.param(SAFE, rate_limited(10.0), 10.0, id="429-retry-after-at-the-cap"),
        pytest.param(SAFE, rate_limited(10.5), None, id="429-retry-after-over-the-cap"),
        pytest.param(SAFE, server_error(), 0.5, id="5xx-safe"),
        pytest.param(SAFE, ServiceUnavailableError(ENDPOINT, 503, "down"), 0.5, id="503-safe"),
        pytest.param(UNSAFE, server_error(), None, id="5xx-create"),
        pytest.param(
            SAFE, TransportError(ENDPOINT, "ReadError", request_sent=True), 0.5, id="lost-safe"
        ),
        pytest.param(
            UNSAFE, TransportError(ENDPOINT, "ReadError", request_sent=True), None, id="lost-create"
        ),
        pytest.param(
            UNSAFE,
            TransportError(ENDPOINT, "ConnectError", request_sent=False),
            0.5,
            id="never-sent-create",
        ),
        pytest.param(SAFE, AuthenticationError(ENDPOINT, 401, "bad key"), None, id="401"),
        pytest.param(SAFE, NotFoundError(ENDPOINT, 404, "gone"), None, id="404"),
        pytest.param(SAFE, ConflictError(ENDPOINT, 409, "paused"), None, id="409"),
        pytest.param(SAFE, BadPayloadError(ENDPOINT, None, "not JSON"), None, id="bad-payload"),
    ],
)
def test_which_failures_are_retried(call: Call, error: E2BError, expected_s: float | None) -> None:
    assert policy(fraction=1.0).delay_before_retry_s(call, error, 1) == expected_s


def test_a_429_on_the_last_attempt_is_not_retried_even_with_retry_after() -> None:
    assert policy(max_attempts=2).delay_before_retry_s(SAFE, rate_limited(1.0), 2) is None


# --- the clients give up ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_clients_give_up_after_max_attempts_with_the_last_error(kind: str) -> None:
    path = f"/sandboxes/{payloads.SANDBOX_ID}"
    api = FakeAPI().on(
        "GET",
        path,
        json_response(500, payloads.error(500, "first")),
        json_response(502, payloads.error(502, "second")),
        json_response(503, payloads.error(503, "third")),
    )
    retry = RetryPolicy(max_attempts=3, random_fraction=lambda: 0.5)
    action = actions.get_sandbox(payloads.SANDBOX_ID)

    with pytest.raises(ServiceUnavailableError, match="answered 503: third"):
        if kind == "sync":
            api.client(retry=retry).run(action)
        else:
            asyncio.run(api.async_client(retry=retry).run(action))

    assert len(api.requests) == 3
    assert api.sleeps_s == [0.375, 0.75]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_retry_that_succeeds_returns_the_result(kind: str) -> None:
    path = f"/sandboxes/{payloads.SANDBOX_ID}"
    api = FakeAPI().on(
        "GET",
        path,
        json_response(503, payloads.error(503, "down")),
        json_response(200, payloads.sandbox_detail()),
    )
    action = actions.get_sandbox(payloads.SANDBOX_ID)

    if kind == "sync":
        detail = api.client().run(action)
    else:
        detail = asyncio.run(api.async_client().run(action))

    assert detail.sandbox_id == payloads.SANDBOX_ID
    assert len(api.requests) == 2


def test_an_async_batch_raises_the_failure_of_one_chunk_itself() -> None:
    """One chunk's error stands for the batch: the caller sees it, not an ExceptionGroup."""

    def answer(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["sandbox_ids"].split(",")
        if "sb150" in ids:
            return json_response(404, payloads.error(404, "no such sandbox"))
        return json_response(200, payloads.sandboxes_with_metrics(ids))

    api = FakeAPI().on("GET", "/sandboxes/metrics", answer)
    action = actions.sandboxes_metrics([f"sb{i:03d}" for i in range(250)])

    with pytest.raises(NotFoundError, match="GET /sandboxes/metrics answered 404"):
        asyncio.run(api.async_client().run(action))
