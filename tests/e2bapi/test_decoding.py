"""Reading answers: contract breaks become BadPayloadError naming the field; error bodies and
Retry-After headers are read whatever shape they come in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from e2bapi import RetryPolicy, actions
from e2bapi.decoding import error_for, parse_retry_after
from e2bapi.errors import (
    BadPayloadError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from e2bapi.exchange import Call
from e2bapi.models.sandboxes import NewSandbox
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

SID = payloads.SANDBOX_ID
SANDBOX_PATH = f"/sandboxes/{SID}"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
GET_SANDBOX = Call("GET", "/sandboxes/{sandboxID}", {"sandboxID": SID})


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != key}


def bad_payload_of_get_sandbox(answer: httpx.Response) -> BadPayloadError:
    api = FakeAPI().on("GET", SANDBOX_PATH, answer)
    with pytest.raises(BadPayloadError) as raised:
        api.client().run(actions.get_sandbox(SID))
    assert len(api.requests) == 1  # a broken contract is not retried
    return raised.value


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.Response(200, text="<html>gateway</html>"), id="html"),
        pytest.param(httpx.Response(200), id="empty"),
        pytest.param(httpx.Response(200, text='{"sandboxID": '), id="truncated"),
    ],
)
def test_a_body_that_is_not_json(answer: httpx.Response) -> None:
    error = bad_payload_of_get_sandbox(answer)

    assert error.field is None
    assert str(error) == "GET /sandboxes/{sandboxID}: unexpected answer: the body is not JSON"


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        pytest.param(
            without(payloads.sandbox_detail(), "sandboxID"), "sandboxID", "required", id="missing"
        ),
        pytest.param(
            payloads.sandbox_detail() | {"cpuCount": "two"}, "cpuCount", "integer", id="wrong-type"
        ),
        pytest.param(
            payloads.sandbox_detail() | {"endAt": "soon"}, "endAt", "datetime", id="bad-datetime"
        ),
        pytest.param(
            payloads.sandbox_detail() | {"state": "frozen"}, "state", "'running'", id="enum"
        ),
        pytest.param(
            payloads.sandbox_detail() | {"lifecycle": {"autoResume": False}},
            "lifecycle.onTimeout",
            "required",
            id="nested",
        ),
        pytest.param([payloads.sandbox_detail()], "(body)", "object", id="list-for-object"),
    ],
)
def test_a_body_that_breaks_the_contract_names_the_field(
    body: Any, field: str, problem: str
) -> None:
    error = bad_payload_of_get_sandbox(json_response(200, body))

    assert error.field == field
    assert str(error).startswith(f"GET /sandboxes/{{sandboxID}}: unexpected answer at {field}: ")
    assert problem in error.problem


def test_a_list_item_missing_a_field_is_named_by_its_index() -> None:
    broken = without(payloads.listed_sandbox("b"), "sandboxID")
    api = FakeAPI().on(
        "GET", "/v2/sandboxes", json_response(200, [payloads.listed_sandbox(), broken])
    )

    with pytest.raises(BadPayloadError, match=r"at \[1\]\.sandboxID: Field required"):
        api.client().run(actions.list_sandboxes())


def test_a_batch_metric_missing_a_gauge_is_named_by_its_sandbox() -> None:
    body = payloads.sandboxes_with_metrics(["a"])
    del body["sandboxes"]["a"]["memUsed"]
    api = FakeAPI().on("GET", "/sandboxes/metrics", json_response(200, body))

    with pytest.raises(BadPayloadError) as raised:
        api.client().run(actions.sandboxes_metrics(["a"]))

    assert raised.value.field == "sandboxes.a.memUsed"


def test_unknown_extra_fields_are_accepted_and_kept() -> None:
    """The API grows: a new field must not break the client, and stays readable."""
    body = payloads.sandbox_detail() | {"gpuCount": 1, "region": {"name": "eu"}}
    body["lifecycle"] = {"autoResume": False, "onTimeout": "kill", "graceS": 5}
    api = FakeAPI().on("GET", SANDBOX_PATH, json_response(200, body))

    detail = api.client().run(actions.get_sandbox(SID))

    assert detail.model_extra == {"gpuCount": 1, "region": {"name": "eu"}}
    assert detail.lifecycle is not None
    assert detail.lifecycle.model_extra == {"graceS": 5}


def test_deprecated_required_fields_missing_from_create_break_the_contract() -> None:
    """The official SDK fails without `clientID`; so does this client, by name."""
    api = FakeAPI().on(
        "POST", "/sandboxes", json_response(201, without(payloads.sandbox(), "clientID"))
    )

    with pytest.raises(BadPayloadError, match=r"^POST /sandboxes: unexpected answer at clientID"):
        api.client().run(actions.create_sandbox(NewSandbox(template_id="base")))


# --- error bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            b"<html><body>502 Bad Gateway</body></html>",
            "<html><body>502 Bad Gateway</body></html>",
            id="html",
        ),
        pytest.param(b"  upstream timed out\n", "upstream timed out", id="text"),
        pytest.param(b"", "(empty body)", id="empty"),
        pytest.param(
            b'{"code": 502, "detail": "no message"}',
            '{"code": 502, "detail": "no message"}',
            id="json-without-message",
        ),
        pytest.param(b"\xff\xfe broken bytes", "\ufffd\ufffd broken bytes", id="not-utf8"),
    ],
)
def test_error_bodies_that_are_not_e2b_json_still_give_a_readable_message(
    content: bytes, message: str
) -> None:
    error = error_for(GET_SANDBOX, 502, httpx.Headers(), content, NOW)

    assert type(error) is ServerError
    assert error.message == message
    assert str(error) == f"GET /sandboxes/{{sandboxID}} answered 502: {message}"


def test_a_long_error_body_is_shortened() -> None:
    error = error_for(GET_SANDBOX, 500, httpx.Headers(), b"x" * 10_000, NOW)

    assert error.message == "x" * 300


def test_an_e2b_error_body_gives_its_message_and_error_code() -> None:
    content = b'{"code": 404, "message": "sandbox not found", "error_code": "SANDBOX_NOT_FOUND"}'

    error = error_for(GET_SANDBOX, 404, httpx.Headers(), content, NOW)

    assert type(error) is NotFoundError
    assert error.message == "sandbox not found"
    assert error.error_code == "SANDBOX_NOT_FOUND"


def test_a_non_json_error_through_the_client_names_endpoint_and_text() -> None:
    api = FakeAPI().on("DELETE", SANDBOX_PATH, httpx.Response(502, text="Bad Gateway"))

    with pytest.raises(
        ServerError, match=r"^DELETE /sandboxes/\{sandboxID\} answered 502: Bad Gateway$"
    ):
        api.client().run(actions.kill_sandbox(SID))


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param(" 1.5 ", 1.5, id="fractional-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-is-now"),
        pytest.param("Thu, 26 Nov 2026 10:00:30 GMT", 30.0, id="http-date"),
        pytest.param("Thu, 26 Nov 2026 12:00:30 +0200", 30.0, id="date-other-zone"),
        pytest.param("Thu, 26 Nov 2026 10:00:30 -0000", 30.0, id="date-minus-zero-zone"),
        pytest.param("Thu, 26 Nov 2026 09:59:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("nan", None, id="not-a-number"),
        pytest.param("inf", None, id="infinite"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_a_429_with_a_retry_after_date_is_waited_out_by_the_client_clock() -> None:
    too_many = json_response(
        429, payloads.error(429, "rate limit"), {"Retry-After": "Thu, 26 Nov 2026 10:00:05 GMT"}
    )
    api = FakeAPI().on("DELETE", SANDBOX_PATH, too_many, httpx.Response(204))

    api.client(clock=lambda: NOW).run(actions.kill_sandbox(SID))

    assert api.sleeps_s == [5.0]


def test_a_429_error_carries_retry_after_seconds() -> None:
    headers = httpx.Headers({"Retry-After": "120"})

    error = error_for(GET_SANDBOX, 429, headers, b'{"code":429,"message":"slow"}', NOW)

    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 120.0


@pytest.mark.parametrize(
    "failure",
    [httpx.TooManyRedirects("redirect loop"), httpx.DecodingError("bad gzip")],
    ids=["redirect-loop", "undecodable-body"],
)
def test_httpx_errors_beyond_transport_become_transport_errors(failure: Exception) -> None:
    api = FakeAPI().on("GET", "/sandboxes/a", failure)
    with pytest.raises(TransportError, match=r"GET /sandboxes/\{sandboxID\}: no answer"):
        api.client(retry=RetryPolicy(max_attempts=1)).run(actions.get_sandbox("a"))
