"""Every catalog action x every kind of failure: the error raised, and whether it is retried.

A catch-all fake answers every request of the action the same way, whatever its path, so
the matrix needs no per-endpoint scripting. Where a case ends in success, requests after
the scripted ones get an answer shaped like the real one for their endpoint.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from e2bapi import actions
from e2bapi.catalog import ACTIONS_BY_NAME, CATALOG, ActionEntry
from e2bapi.errors import (
    APIError,
    AuthenticationError,
    BadPayloadError,
    BadRequestError,
    ConflictError,
    E2BError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)
from e2bapi.models.health import Health
from e2bapi.models.metrics import MaxTeamMetric
from e2bapi.models.sandboxes import ConnectResult, Sandbox, SandboxDetail
from e2bapi.models.templates import (
    TemplateBuildFileUpload,
    TemplateBuildInfo,
    TemplateRequestResponseV3,
    TemplateUpdateResponse,
)
from e2bapi.models.webhooks import WebhookDetail
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import API_KEY, Answer, FakeAPI, json_response
from tests.e2bapi.samples import SAMPLE_ACTIONS, success_response, template_of

SID = payloads.SANDBOX_ID
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

# With the fake's RetryPolicy (random fraction 0.5, base 0.5 s): the first three backoffs.
BACKOFFS_S = [0.375, 0.75, 1.5]
MAX_ATTEMPTS = 4

# --- what each action is called with, what it returns, how it must behave ------------------


@dataclass(frozen=True)
class Expected:
    """What the matrix expects of one catalog action's sample (tests/e2bapi/samples.py)."""

    result_type: type[Any]
    # Creating twice after an unknown outcome is harmful: 5xx and sent requests not retried.
    retry_safe: bool = True
    # Whether a 200 with a body that is not JSON breaks the action.
    parses_body: bool = True
    # The endpoint of the action's first call, when the catalog describes several.
    first_endpoint: str | None = None


NONE = type(None)
EXPECTED: dict[str, Expected] = {
    "health": Expected(Health, retry_safe=False, parses_body=False),
    "create-sandbox": Expected(Sandbox, retry_safe=False),
    "get-sandbox": Expected(SandboxDetail),
    "list-sandboxes": Expected(list),
    "pause-sandbox": Expected(NONE, parses_body=False),
    "connect-sandbox": Expected(ConnectResult),
    "kill-sandbox": Expected(NONE, parses_body=False),
    "set-timeout": Expected(NONE, parses_body=False),
    "refresh-sandbox": Expected(NONE, parses_body=False),
    "extend-sandbox": Expected(actions.ExtendOutcome, first_endpoint="GET /sandboxes/{sandboxID}"),
    "sandbox-logs": Expected(list),
    "sandbox-metrics": Expected(list),
    "sandboxes-metrics": Expected(dict),
    "sandbox-events": Expected(list),
    "team-events": Expected(list),
    "team-metrics": Expected(list),
    "team-max-metric": Expected(MaxTeamMetric),
    "list-templates": Expected(list),
    "create-template": Expected(TemplateRequestResponseV3, retry_safe=False),
    "template-files-upload": Expected(TemplateBuildFileUpload),
    "start-template-build": Expected(NONE, retry_safe=False, parses_body=False),
    "template-build-status": Expected(TemplateBuildInfo),
    "update-template": Expected(TemplateUpdateResponse),
    "create-webhook": Expected(WebhookDetail, retry_safe=False),
    "list-webhooks": Expected(list),
    "get-webhook": Expected(WebhookDetail),
    "update-webhook": Expected(WebhookDetail),
    "delete-webhook": Expected(NONE, parses_body=False),
}

NAMES = [entry.name for entry in CATALOG]


def test_the_samples_cover_the_whole_catalog() -> None:
    """A new catalog action fails here until the matrix knows how to call it."""
    assert len(CATALOG) == 28
    assert set(EXPECTED) == set(ACTIONS_BY_NAME) == set(SAMPLE_ACTIONS)


def expected_endpoint(name: str) -> str:
    return EXPECTED[name].first_endpoint or ACTIONS_BY_NAME[name].endpoint


def start(entry: ActionEntry) -> Any:
    return SAMPLE_ACTIONS[entry.name]()


class CatchAllAPI(FakeAPI):
    """Answers requests in order from `answers` whatever their path; then `then` (if given)
    answers the rest, else the last answer repeats."""

    def __init__(
        self, *answers: Answer, then: Callable[[httpx.Request], httpx.Response] | None = None
    ) -> None:
        super().__init__()
        self._script: deque[Answer] = deque(answers)
        self._then = then

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._script and (self._then is not None or len(self._script) > 1):
            answer = self._script.popleft()
        elif self._script:
            answer = self._script[0]
        else:
            assert self._then is not None
            answer = self._then
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[[FakeAPI, ActionEntry], Any]:
    """Run an entry's sample on the fake API with the sync or the async client."""

    def run_entry(api: FakeAPI, entry: ActionEntry) -> Any:
        if request.param == "sync":
            return api.client().run(start(entry))
        return asyncio.run(api.async_client().run(start(entry)))

    return run_entry


def assert_names_the_endpoint(error: E2BError, name: str) -> None:
    endpoint = expected_endpoint(name)
    assert getattr(error, "endpoint", None) == endpoint
    assert re.match(rf"{re.escape(endpoint)}[: ]", str(error)), str(error)
    assert API_KEY not in str(error)


def request_path_matches(request: httpx.Request, endpoint: str) -> bool:
    method, template = endpoint.split(" ", 1)
    return request.method == method and template_of(method, request.url.path) == template


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_success_answers_give_the_result_type(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    """The baseline of the matrix: the sample works, and calls the catalog's endpoint first."""
    api = CatchAllAPI(then=success_response)

    result = run(api, ACTIONS_BY_NAME[name])

    assert isinstance(result, EXPECTED[name].result_type)
    assert request_path_matches(api.requests[0], expected_endpoint(name))
    assert api.sleeps_s == []


@pytest.mark.parametrize(
    ("status_code", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_client_errors_raise_their_class_at_once(
    name: str,
    status_code: int,
    error_class: type[APIError],
    run: Callable[[FakeAPI, ActionEntry], Any],
) -> None:
    api = CatchAllAPI(json_response(status_code, payloads.error(status_code, "refused")))

    with pytest.raises(error_class) as raised:
        run(api, ACTIONS_BY_NAME[name])

    assert type(raised.value) is error_class
    assert raised.value.status_code == status_code
    assert "refused" in str(raised.value)
    assert_names_the_endpoint(raised.value, name)
    assert len(api.requests) == 1
    assert api.sleeps_s == []


@pytest.mark.parametrize("name", NAMES)
def test_429_with_retry_after_waits_that_long_then_succeeds(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    """A 429 was refused before anything happened: even creates are sent again."""
    too_many = json_response(429, payloads.error(429, "rate limit"), {"Retry-After": "2"})
    api = CatchAllAPI(too_many, then=success_response)

    result = run(api, ACTIONS_BY_NAME[name])

    assert isinstance(result, EXPECTED[name].result_type)
    assert api.sleeps_s == [2.0]
    assert api.requests[0].url == api.requests[1].url


@pytest.mark.parametrize("name", NAMES)
def test_429_without_retry_after_backs_off_then_succeeds(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    api = CatchAllAPI(json_response(429, payloads.error(429, "slow down")), then=success_response)

    result = run(api, ACTIONS_BY_NAME[name])

    assert isinstance(result, EXPECTED[name].result_type)
    assert api.sleeps_s == BACKOFFS_S[:1]


@pytest.mark.parametrize("name", NAMES)
def test_429_with_retry_after_above_the_cap_raises_at_once(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    """The caller gets the wait to slow itself down, instead of a blocked job."""
    too_many = json_response(429, payloads.error(429, "rate limit"), {"Retry-After": "60"})
    api = CatchAllAPI(too_many, then=success_response)

    with pytest.raises(RateLimitedError) as raised:
        run(api, ACTIONS_BY_NAME[name])

    assert raised.value.retry_after_s == 60.0
    assert raised.value.status_code == 429
    assert_names_the_endpoint(raised.value, name)
    assert len(api.requests) == 1
    assert api.sleeps_s == []


@pytest.mark.parametrize(
    ("status_code", "error_class"), [(500, ServerError), (503, ServiceUnavailableError)]
)
@pytest.mark.parametrize("name", NAMES)
def test_server_errors_are_retried_only_when_retry_safe(
    name: str,
    status_code: int,
    error_class: type[ServerError],
    run: Callable[[FakeAPI, ActionEntry], Any],
) -> None:
    """Retry-safe calls try MAX_ATTEMPTS times; creates and build starts exactly once.
    The health check reports a 5xx as unhealthy, once, instead of raising."""
    api = CatchAllAPI(json_response(status_code, payloads.error(status_code, "it broke")))
    sample = EXPECTED[name]

    if name == "health":
        health = run(api, ACTIONS_BY_NAME[name])
        assert health == Health(healthy=False, status_code=status_code, detail="it broke")
    else:
        with pytest.raises(error_class) as raised:
            run(api, ACTIONS_BY_NAME[name])
        assert type(raised.value) is error_class
        assert raised.value.status_code == status_code
        assert_names_the_endpoint(raised.value, name)

    attempts = MAX_ATTEMPTS if sample.retry_safe else 1
    assert len(api.requests) == attempts
    assert api.sleeps_s == BACKOFFS_S[: attempts - 1]


@pytest.mark.parametrize("name", NAMES)
def test_a_lost_answer_is_retried_only_when_retry_safe(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    """After a read error the server may have acted: only retry-safe calls go again."""
    api = CatchAllAPI(httpx.ReadError("connection reset"))

    with pytest.raises(TransportError) as raised:
        run(api, ACTIONS_BY_NAME[name])

    assert raised.value.request_sent is True
    assert "ReadError" in str(raised.value)
    assert_names_the_endpoint(raised.value, name)
    attempts = MAX_ATTEMPTS if EXPECTED[name].retry_safe else 1
    assert len(api.requests) == attempts


@pytest.mark.parametrize("name", NAMES)
def test_a_connect_error_is_retried_even_for_creates(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    """The request never left this machine, so nothing can have happened."""
    api = CatchAllAPI(httpx.ConnectError("connection refused"), then=success_response)

    result = run(api, ACTIONS_BY_NAME[name])

    assert isinstance(result, EXPECTED[name].result_type)
    assert api.sleeps_s == BACKOFFS_S[:1]


@pytest.mark.parametrize("name", NAMES)
def test_connect_errors_until_max_attempts_raise_a_transport_error_not_sent(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    api = CatchAllAPI(httpx.ConnectError("connection refused"))

    with pytest.raises(TransportError) as raised:
        run(api, ACTIONS_BY_NAME[name])

    assert raised.value.request_sent is False
    assert_names_the_endpoint(raised.value, name)
    assert len(api.requests) == MAX_ATTEMPTS


@pytest.mark.parametrize("name", NAMES)
def test_a_200_that_is_not_json_is_a_bad_payload_for_actions_that_read_it(
    name: str, run: Callable[[FakeAPI, ActionEntry], Any]
) -> None:
    api = CatchAllAPI(httpx.Response(200, text="not json"))

    if EXPECTED[name].parses_body:
        with pytest.raises(BadPayloadError) as raised:
            run(api, ACTIONS_BY_NAME[name])
        assert "not JSON" in str(raised.value)
        assert_names_the_endpoint(raised.value, name)
    else:
        # These actions never read the body: whatever comes with a 2xx is fine.
        result = run(api, ACTIONS_BY_NAME[name])
        assert isinstance(result, EXPECTED[name].result_type)
    assert len(api.requests) == 1
