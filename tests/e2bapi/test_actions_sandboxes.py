"""Sandbox actions: the requests they send and how they read the answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from e2bapi import actions
from e2bapi.errors import BadPayloadError, ConflictError
from e2bapi.exchange import Exchange
from e2bapi.models.sandboxes import (
    AutoResumeConfig,
    ConnectResult,
    ListedSandbox,
    NewSandbox,
    Sandbox,
    SandboxDetail,
)
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

SID = payloads.SANDBOX_ID
SANDBOX_PATH = f"/sandboxes/{SID}"


def test_create_sends_wire_names_and_reads_the_201_sandbox() -> None:
    """camelCase on the wire, except the one snake_case `allow_internet_access`."""
    api = FakeAPI().on("POST", "/sandboxes", json_response(201, payloads.sandbox()))
    new_sandbox = NewSandbox(
        template_id="base",
        timeout_s=300,
        auto_pause=True,
        auto_resume=AutoResumeConfig(enabled=True),
        allow_internet_access=False,
        metadata={"owner": "ci"},
        env_vars={"LANG": "C.UTF-8"},
    )

    created = api.client().run(actions.create_sandbox(new_sandbox))

    assert api.bodies() == [
        {
            "templateID": "base",
            "timeout": 300,
            "autoPause": True,
            "autoResume": {"enabled": True},
            "allow_internet_access": False,
            "metadata": {"owner": "ci"},
            "envVars": {"LANG": "C.UTF-8"},
        }
    ]
    assert isinstance(created, Sandbox)
    assert created.sandbox_id == SID
    assert created.template_id == "rki5dems9wqfm4r03t7g"
    assert created.client_id == "6532622b"
    assert created.envd_version == "0.6.4"
    assert created.envd_access_token == "token-abc"


def test_create_sends_only_the_fields_given() -> None:
    """Unset optional fields are left out rather than sent as null."""
    api = FakeAPI().on("POST", "/sandboxes", json_response(201, payloads.sandbox()))

    api.client().run(actions.create_sandbox(NewSandbox(template_id="base")))

    assert api.bodies() == [{"templateID": "base"}]


def test_get_reads_the_sandbox_detail() -> None:
    api = FakeAPI().on("GET", SANDBOX_PATH, json_response(200, payloads.sandbox_detail()))

    detail = api.client().run(actions.get_sandbox(SID))

    assert [(r.method, r.url.path) for r in api.requests] == [("GET", SANDBOX_PATH)]
    assert isinstance(detail, SandboxDetail)
    assert detail.sandbox_id == SID
    assert detail.state == "running"
    assert detail.end_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert detail.memory_mb == 512
    assert detail.lifecycle is not None
    assert detail.lifecycle.on_timeout == "kill"


def test_sandbox_id_is_percent_encoded_into_the_path() -> None:
    """An ID with a slash cannot reach another endpoint."""
    api = FakeAPI().on("GET", "/sandboxes/a/b", json_response(200, payloads.sandbox_detail()))

    api.client().run(actions.get_sandbox("a/b"))

    assert api.requests[0].url.raw_path == b"/sandboxes/a%2Fb"


def test_list_sends_states_comma_separated_and_metadata_url_encoded() -> None:
    api = FakeAPI().on("GET", "/v2/sandboxes", json_response(200, [payloads.listed_sandbox()]))

    listed = api.client().run(
        actions.list_sandboxes(
            states=["running", "paused"], metadata={"owner": "ci", "team": "a&b c"}
        )
    )

    params = api.requests[0].url.params
    assert params["state"] == "running,paused"
    # One `metadata` parameter holding its own query string: its `&` must not split it.
    assert params.get_list("metadata") == ["owner=ci&team=a%26b+c"]
    assert parse_qs(params["metadata"]) == {"owner": ["ci"], "team": ["a&b c"]}
    assert "team" not in params
    assert params["limit"] == "100"
    assert [sandbox.sandbox_id for sandbox in listed] == [SID]
    assert isinstance(listed[0], ListedSandbox)


def test_list_without_filters_sends_neither_state_nor_metadata() -> None:
    api = FakeAPI().on("GET", "/v2/sandboxes", json_response(200, []))

    assert api.client().run(actions.list_sandboxes()) == []
    assert set(api.requests[0].url.params.keys()) == {"limit"}


def test_list_follows_x_next_token_across_three_pages_and_stops_when_absent() -> None:
    api = FakeAPI().on(
        "GET",
        "/v2/sandboxes",
        json_response(
            200,
            [payloads.listed_sandbox("a"), payloads.listed_sandbox("b")],
            {"X-Next-Token": "t1"},
        ),
        json_response(200, [payloads.listed_sandbox("c")], {"X-Next-Token": "t2"}),
        json_response(200, [payloads.listed_sandbox("d", state="paused")]),
    )

    listed = api.client().run(actions.list_sandboxes(states=["running", "paused"], page_limit=2))

    assert [s.sandbox_id for s in listed] == ["a", "b", "c", "d"]
    assert [r.url.params.get("nextToken") for r in api.requests] == [None, "t1", "t2"]
    assert all(r.url.params["limit"] == "2" for r in api.requests)
    assert all(r.url.params["state"] == "running,paused" for r in api.requests)


def test_list_treats_an_empty_x_next_token_as_the_last_page() -> None:
    api = FakeAPI().on(
        "GET",
        "/v2/sandboxes",
        json_response(200, [payloads.listed_sandbox()], {"X-Next-Token": ""}),
    )

    assert len(api.client().run(actions.list_sandboxes())) == 1
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    "tokens",
    [pytest.param(["t1", "t1"], id="same-twice"), pytest.param(["t1", "t2", "t1"], id="cycle")],
)
def test_list_refuses_a_repeated_next_token(tokens: list[str]) -> None:
    """A token seen before would page forever; the fake gives up after 10 pages to prove it."""
    answered: list[str] = []

    def page(request: httpx.Request) -> httpx.Response:
        if len(answered) >= 10:
            return json_response(200, [])
        answered.append(tokens[len(answered) % len(tokens)])
        return json_response(200, [payloads.listed_sandbox()], {"X-Next-Token": answered[-1]})

    api = FakeAPI().on("GET", "/v2/sandboxes", page)

    with pytest.raises(BadPayloadError, match="GET /v2/sandboxes") as raised:
        api.client().run(actions.list_sandboxes())

    assert raised.value.field == "X-Next-Token"
    assert len(api.requests) == len(tokens)


@pytest.mark.parametrize("page_limit", [0, 101])
def test_list_refuses_a_page_limit_outside_1_to_100(page_limit: int) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="page_limit"):
        api.client().run(actions.list_sandboxes(page_limit=page_limit))
    assert api.requests == []


def test_kill_sends_delete_and_accepts_204() -> None:
    api = FakeAPI().on("DELETE", SANDBOX_PATH, httpx.Response(204))

    assert api.client().run(actions.kill_sandbox(SID)) is None
    assert [(r.method, r.url.path) for r in api.requests] == [("DELETE", SANDBOX_PATH)]


def test_pause_accepts_204() -> None:
    api = FakeAPI().on("POST", f"{SANDBOX_PATH}/pause", httpx.Response(204))

    assert api.client().run(actions.pause_sandbox(SID)) is None
    assert [(r.method, r.url.path) for r in api.requests] == [("POST", f"{SANDBOX_PATH}/pause")]


def test_pausing_a_sandbox_that_is_not_running_raises_conflict_without_retrying() -> None:
    api = FakeAPI().on(
        "POST",
        f"{SANDBOX_PATH}/pause",
        json_response(409, payloads.error(409, f"Sandbox {SID} is already paused")),
    )

    with pytest.raises(ConflictError) as raised:
        api.client().run(actions.pause_sandbox(SID))

    assert raised.value.status_code == 409
    assert "already paused" in str(raised.value)
    assert str(raised.value).startswith("POST /sandboxes/{sandboxID}/pause answered 409")
    assert len(api.requests) == 1


@pytest.mark.parametrize(("status_code", "resumed"), [(200, False), (201, True)])
def test_connect_tells_a_resume_201_from_a_running_200(status_code: int, resumed: bool) -> None:
    api = FakeAPI().on(
        "POST", f"{SANDBOX_PATH}/connect", json_response(status_code, payloads.sandbox())
    )

    result = api.client().run(actions.connect_sandbox(SID, 120))

    assert api.bodies() == [{"timeout": 120}]
    assert isinstance(result, ConnectResult)
    assert result.resumed is resumed
    assert result.sandbox.sandbox_id == SID


def test_set_timeout_sends_the_seconds_and_accepts_204() -> None:
    api = FakeAPI().on("POST", f"{SANDBOX_PATH}/timeout", httpx.Response(204))

    assert api.client().run(actions.set_sandbox_timeout(SID, 60)) is None
    assert [(r.method, r.url.path) for r in api.requests] == [("POST", f"{SANDBOX_PATH}/timeout")]
    assert api.bodies() == [{"timeout": 60}]


@pytest.mark.parametrize(
    ("duration_s", "body"),
    [(None, {}), (15, {"duration": 15}), (600, {"duration": 600}), (3600, {"duration": 3600})],
)
def test_refresh_sends_a_json_body_even_without_a_duration(
    duration_s: int | None, body: dict[str, int]
) -> None:
    """E2B answers an empty body with 400, so no duration still sends `{}`."""
    api = FakeAPI().on("POST", f"{SANDBOX_PATH}/refreshes", httpx.Response(204))

    assert api.client().run(actions.refresh_sandbox(SID, duration_s)) is None
    assert api.requests[0].headers["content-type"] == "application/json"
    assert api.bodies() == [body]


@pytest.mark.parametrize("duration_s", [-1, 0, 14, 3601])
def test_refresh_refuses_a_duration_outside_15_to_3600_before_any_request(
    duration_s: int,
) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="duration_s"):
        api.client().run(actions.refresh_sandbox(SID, duration_s))
    assert api.requests == []


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda: actions.connect_sandbox(SID, -1), id="connect"),
        pytest.param(lambda: actions.set_sandbox_timeout(SID, -1), id="set-timeout"),
    ],
)
def test_negative_timeouts_are_refused_before_any_request(
    action: Callable[[], Exchange[object]],
) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="timeout_s"):
        api.client().run(action())
    assert api.requests == []


def test_a_zero_timeout_is_allowed() -> None:
    """0 is the boundary: end the sandbox now."""
    api = FakeAPI().on("POST", f"{SANDBOX_PATH}/timeout", httpx.Response(204))

    api.client().run(actions.set_sandbox_timeout(SID, 0))

    assert api.bodies() == [{"timeout": 0}]


def test_new_sandbox_refuses_a_negative_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        NewSandbox(template_id="base", timeout_s=-1)
