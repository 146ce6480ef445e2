"""Bad input gets E2B's `{"code", "message"}` with the right 4xx, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandboxd.testing import RunningSandboxd


def assert_problem(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert text in body["message"]


@pytest.fixture(scope="module")
def sandbox_id(sandboxd: RunningSandboxd) -> Iterator[str]:
    with httpx.Client(base_url=sandboxd.api_url, headers={"X-API-Key": sandboxd.api_key}) as c:
        created = c.post("/sandboxes", json={"templateID": "base", "timeout": 300})
        assert created.status_code == 201, created.text
        yield created.json()["sandboxID"]
        c.delete(f"/sandboxes/{created.json()['sandboxID']}")


def test_every_route_but_health_needs_the_key(sandboxd: RunningSandboxd) -> None:
    with httpx.Client(base_url=sandboxd.api_url) as anonymous:
        health = anonymous.get("/health")
        assert health.status_code == 200
        assert "isolation:" in health.text
        assert_problem(anonymous.get("/v2/sandboxes"), 401)
        wrong = anonymous.get("/v2/sandboxes", headers={"X-API-Key": "e2b_" + "0" * 40})
        assert_problem(wrong, 401)


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b"", 400, "required"),
        (b'{"timeout": 10}', 400, "templateID"),
        (b'{"templateID": 5}', 400, "templateID"),
        (b'{"templateID": "no-such-template"}', 400, "not found"),
        (b'{"templateID": "base", "timeout": 0}', 400, "timeout"),
        (b'{"templateID": "base", "timeout": 999999}', 400, "maximum"),
        (b'{"templateID": "base", "timeout": "10"}', 400, "timeout"),
        (b'{"templateID": "base", "metadata": {"a": 1}}', 400, "metadata"),
        (b'{"templateID": "base", "memoryMB": 1}', 400, "memoryMB"),
    ],
)
def test_create_refuses_bad_input(api: httpx.Client, body: bytes, status: int, text: str) -> None:
    response = api.post("/sandboxes", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, status, text)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sandboxes/nosuchsandbox"),
        ("DELETE", "/sandboxes/nosuchsandbox"),
        ("POST", "/sandboxes/nosuchsandbox/pause"),
        ("GET", "/sandboxes/nosuchsandbox/metrics"),
        ("GET", "/v2/sandboxes/nosuchsandbox/logs"),
        ("GET", "/events/sandboxes/nosuchsandbox"),
    ],
)
def test_unknown_sandbox_is_404(api: httpx.Client, method: str, path: str) -> None:
    assert_problem(api.request(method, path), 404, "not found")


def test_connect_timeout_and_refresh_on_unknown_sandbox_are_404(api: httpx.Client) -> None:
    for path in ("connect", "timeout", "refreshes"):
        assert_problem(api.post(f"/sandboxes/nosuch/{path}", json={"timeout": 10}), 404)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/sandboxes/metrics", "sandbox_ids"),
        ("/sandboxes/metrics?sandbox_ids=" + ",".join(f"s{i}" for i in range(101)), "100"),
        ("/v2/sandboxes?state=frozen", "state"),
        ("/v2/sandboxes?limit=0", "limit"),
        ("/v2/sandboxes?limit=101", "limit"),
        ("/v2/sandboxes?limit=ten", "limit"),
        ("/v2/sandboxes?nextToken=garbage!", "nextToken"),
        ("/events/sandboxes?limit=0", "limit"),
        ("/events/sandboxes?orderAsc=maybe", "orderAsc"),
    ],
)
def test_bad_queries_are_400(api: httpx.Client, path: str, text: str) -> None:
    assert_problem(api.get(path), 400, text)


def test_team_routes_check_the_team(api: httpx.Client, sandboxd: RunningSandboxd) -> None:
    other_team = "00000000-0000-4000-8000-000000000000"
    assert_problem(api.get(f"/teams/{other_team}/metrics"), 403)
    assert_problem(api.get(f"/teams/{sandboxd.team_id}/metrics/max"), 400, "metric")
    assert_problem(api.get(f"/teams/{sandboxd.team_id}/metrics/max?metric=cpu"), 400, "metric")
    ok = api.get(f"/teams/{sandboxd.team_id}/metrics/max?metric=concurrent_sandboxes")
    assert ok.status_code == 200 and set(ok.json()) == {"timestamp", "timestampUnix", "value"}


def test_lifetime_calls_refuse_bad_bodies(api: httpx.Client, sandbox_id: str) -> None:
    base = f"/sandboxes/{sandbox_id}"
    assert_problem(api.post(f"{base}/timeout"), 400, "required")  # E2B refuses an empty body
    assert_problem(api.post(f"{base}/timeout", json={"timeout": -1}), 400, "timeout")
    assert_problem(api.post(f"{base}/timeout", json={"timeout": 10**7}), 400, "maximum")
    assert_problem(api.post(f"{base}/refreshes", json={"duration": 3601}), 400, "duration")
    assert api.post(f"{base}/refreshes", json={}).status_code == 204
    assert_problem(api.post(f"{base}/connect", json={}), 400, "timeout")
    assert_problem(api.post(f"{base}/resume", json={"timeout": 10}), 409, "already running")


def test_logs_refuse_bad_parameters(api: httpx.Client, sandbox_id: str) -> None:
    logs = f"/v2/sandboxes/{sandbox_id}/logs"
    assert_problem(api.get(f"{logs}?direction=sideways"), 400, "direction")
    assert_problem(api.get(f"{logs}?level=loud"), 400, "level")
    assert_problem(api.get(f"{logs}?limit=1001"), 400, "limit")
    assert_problem(api.get(f"{logs}?search=" + "x" * 257), 400, "search")


def test_paused_sandbox_refuses_timeout_and_a_second_pause(api: httpx.Client) -> None:
    created = api.post("/sandboxes", json={"templateID": "base", "timeout": 60}).json()
    base = f"/sandboxes/{created['sandboxID']}"
    try:
        assert api.post(f"{base}/pause").status_code == 204
        assert_problem(api.post(f"{base}/pause"), 409, "paused")
        assert_problem(api.post(f"{base}/timeout", json={"timeout": 30}), 409, "not running")
    finally:
        assert api.delete(base).status_code == 204


@pytest.mark.parametrize(
    "path",
    [
        "/sandboxes/{id}/metrics?start=9223372036854775808",
        "/v2/sandboxes/{id}/logs?cursor=9223372036854775808",
        "/events/sandboxes?offset=99999999999999999999",
    ],
)
def test_integers_past_int64_are_400_not_500(api: httpx.Client, sandbox_id: str, path: str) -> None:
    """Found by the fuzzer: SQLite cannot hold them."""
    assert_problem(api.get(path.format(id=sandbox_id)), 400, "between")


@pytest.mark.parametrize(
    "env_vars",
    [b'{"A=B": "x"}', b'{"": "x"}', b'{"A": "x\\u0000y"}', b'{"A": "\\ud800"}'],
)
def test_invalid_environment_variables_are_400_not_503(api: httpx.Client, env_vars: bytes) -> None:
    """Found by the fuzzer: they used to reach the sandbox's start and fail there."""
    body = b'{"templateID": "base", "envVars": ' + env_vars + b"}"
    response = api.post("/sandboxes", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "envVars")


def test_a_message_quoting_invalid_text_is_still_json(api: httpx.Client) -> None:
    body = b'{"templateID": "\\ud800"}'
    response = api.post("/sandboxes", content=body, headers={"Content-Type": "application/json"})
    assert_problem(response, 400, "not found")
