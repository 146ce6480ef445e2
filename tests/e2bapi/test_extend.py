"""`extend_sandbox` lengthens a running sandbox's life and never shortens it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from e2bapi import actions
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

SID = payloads.SANDBOX_ID
SANDBOX_PATH = f"/sandboxes/{SID}"
CONNECT_PATH = f"{SANDBOX_PATH}/connect"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def fixed_now() -> datetime:
    return NOW


def detail(end_at: str, state: str = "running") -> httpx.Response:
    return json_response(200, payloads.sandbox_detail(state=state, end_at=end_at))


def sent(api: FakeAPI) -> list[tuple[str, str]]:
    return [(request.method, request.url.path) for request in api.requests]


def test_a_sandbox_that_already_ends_later_is_left_alone() -> None:
    api = FakeAPI().on("GET", SANDBOX_PATH, detail("2026-11-26T10:15:00Z"))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert outcome.outcome == "already_later"
    assert outcome.previous_end_at == outcome.end_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert sent(api) == [("GET", SANDBOX_PATH)]  # no connect, no timeout change
    assert "2026-11-26T10:15:00+00:00" in outcome.message


def test_a_sandbox_ending_exactly_at_the_wanted_end_is_left_alone() -> None:
    api = FakeAPI().on("GET", SANDBOX_PATH, detail("2026-11-26T10:10:00Z"))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert outcome.outcome == "already_later"
    assert sent(api) == [("GET", SANDBOX_PATH)]


def test_a_running_sandbox_ending_sooner_is_extended_through_connect_then_re_read() -> None:
    api = FakeAPI().on(
        "GET", SANDBOX_PATH, detail("2026-11-26T10:05:00Z"), detail("2026-11-26T10:10:00Z")
    )
    api.on("POST", CONNECT_PATH, json_response(200, payloads.sandbox()))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert sent(api) == [("GET", SANDBOX_PATH), ("POST", CONNECT_PATH), ("GET", SANDBOX_PATH)]
    assert api.bodies()[1] == {"timeout": 600}
    assert outcome.outcome == "extended"
    assert outcome.previous_end_at == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
    assert outcome.end_at == datetime(2026, 11, 26, 10, 10, tzinfo=UTC)
    assert "2026-11-26T10:05:00+00:00" in outcome.message
    assert "2026-11-26T10:10:00+00:00" in outcome.message
    assert "clamped" not in outcome.message


def test_a_paused_sandbox_is_not_resumed() -> None:
    """Connecting would resume a paused sandbox: extend leaves it alone."""
    api = FakeAPI().on("GET", SANDBOX_PATH, detail("2026-11-26T09:50:00Z", state="paused"))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert outcome.outcome == "not_running"
    assert outcome.end_at == outcome.previous_end_at
    assert "paused" in outcome.message
    assert sent(api) == [("GET", SANDBOX_PATH)]


def test_an_end_clamped_by_the_team_maximum_is_reported() -> None:
    """Asked for 2 h with a 1 h team maximum: the end the API holds is reported, and why."""
    api = FakeAPI().on(
        "GET", SANDBOX_PATH, detail("2026-11-26T10:05:00Z"), detail("2026-11-26T11:00:00Z")
    )
    api.on("POST", CONNECT_PATH, json_response(200, payloads.sandbox()))

    outcome = api.client().run(actions.extend_sandbox(SID, 7200, clock=fixed_now))

    assert outcome.outcome == "extended"
    assert outcome.end_at == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert "clamped" in outcome.message
    assert "2026-11-26T11:00:00+00:00" in outcome.message


def test_a_shortfall_within_clock_skew_is_not_called_a_clamp() -> None:
    api = FakeAPI().on(
        "GET", SANDBOX_PATH, detail("2026-11-26T10:05:00Z"), detail("2026-11-26T10:09:57Z")
    )
    api.on("POST", CONNECT_PATH, json_response(200, payloads.sandbox()))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert outcome.outcome == "extended"
    assert "clamped" not in outcome.message


@pytest.mark.parametrize("seconds", [0, -60])
def test_seconds_must_be_positive(seconds: int) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="seconds"):
        api.client().run(actions.extend_sandbox(SID, seconds, clock=fixed_now))
    assert api.requests == []


def test_an_end_the_api_did_not_move_is_not_called_an_extension() -> None:
    api = FakeAPI().on("GET", SANDBOX_PATH, detail("2026-11-26T10:05:00Z"))
    api.on("POST", CONNECT_PATH, json_response(200, payloads.sandbox()))

    outcome = api.client().run(actions.extend_sandbox(SID, 600, clock=fixed_now))

    assert outcome.outcome == "capped"
    assert outcome.end_at == outcome.previous_end_at
    assert outcome.message.startswith("not extended")
