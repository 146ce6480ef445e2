"""Schema-driven fuzzing: schemathesis sends what the E2B specs allow, and what they do not,
to a real sandboxd. Whatever it sends, sandboxd never answers 5xx, and every error it gives is
E2B's `{"code": <status>, "message": <str>}`.

Only the operations sandboxd serves are loaded. Path parameters are drawn half the time from
real IDs (live sandboxes, the team) so generated requests get past the 404s and 403s; the
operations that end, pause or resume a sandbox each get a sandbox of their own, so they cannot
take the others' away. Every sandbox still live after, the fuzzer's own included, is killed.

Each operation is its own pytest test, fuzzed through `APIOperation.as_strategy()` under
Hypothesis: `schemathesis.pytest.from_fixture` (the loader for a server known only at run
time) fails on pytest 9.2 (`'Function' object has no attribute '_nodeid'`, schemathesis 4.32.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from sandboxd.testing import RunningSandboxd, running_sandboxd
from tests.reference_specs import API_SPEC, EVENTS_SPEC, needs_reference_specs

pytestmark = needs_reference_specs

# What sandboxd serves of each spec, in the order the tests run.
API_OPERATIONS: dict[str, tuple[str, ...]] = {
    "/health": ("get",),
    "/teams/{teamID}/metrics": ("get",),
    "/teams/{teamID}/metrics/max": ("get",),
    "/sandboxes": ("get", "post"),
    "/v2/sandboxes": ("get",),
    "/sandboxes/metrics": ("get",),
    "/sandboxes/{sandboxID}/logs": ("get",),
    "/v2/sandboxes/{sandboxID}/logs": ("get",),
    "/sandboxes/{sandboxID}/metrics": ("get",),
    "/sandboxes/{sandboxID}/refreshes": ("post",),
    "/sandboxes/{sandboxID}/timeout": ("post",),
    "/sandboxes/{sandboxID}/connect": ("post",),
    "/sandboxes/{sandboxID}/pause": ("post",),
    "/sandboxes/{sandboxID}/resume": ("post",),
    "/sandboxes/{sandboxID}": ("get", "delete"),
}
EVENTS_OPERATIONS: dict[str, tuple[str, ...]] = {
    "/events/sandboxes": ("get",),
    "/events/sandboxes/{sandboxID}": ("get",),
}
SPECS = {API_SPEC: API_OPERATIONS, EVENTS_SPEC: EVENTS_OPERATIONS}

# Operations that can end a sandbox, shorten its life or change its state: each one gets a
# sandbox of its own, made paused where the interesting answers need a paused one.
OWN_SANDBOX_OPERATIONS: dict[str, bool] = {
    "POST /sandboxes/{sandboxID}/timeout": False,
    "POST /sandboxes/{sandboxID}/connect": True,
    "POST /sandboxes/{sandboxID}/pause": False,
    "POST /sandboxes/{sandboxID}/resume": True,
    "DELETE /sandboxes/{sandboxID}": False,
}

MAX_EXAMPLES = 25
DEADLINE = timedelta(seconds=5)
REQUEST_TIMEOUT_S = 5
REAL_ID_PROBABILITY = 0.5
SANDBOX_TIMEOUT_S = 300
# The fuzzer's creates succeed only up to this many running sandboxes; past it they get 429.
MAX_SANDBOXES = 10
LIST_PAGES_MAX = 10


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    """This module's own sandboxd: room for the fuzzer's sandboxes next to the real IDs."""
    data_dir: Path = tmp_path_factory.mktemp("sandboxd-fuzz")
    with running_sandboxd(
        data_dir, SANDBOXD_SAMPLE_INTERVAL_S="1", SANDBOXD_MAX_SANDBOXES=str(MAX_SANDBOXES)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def control(sandboxd: RunningSandboxd) -> Iterator[httpx.Client]:
    """A plain client on the API, outside the fuzzer, for setup and cleanup."""
    with httpx.Client(
        base_url=sandboxd.api_url, headers={"X-API-Key": sandboxd.api_key}, timeout=30
    ) as client:
        yield client


def _create(control: httpx.Client, *, paused: bool) -> str:
    created = control.post("/sandboxes", json={"templateID": "base", "timeout": SANDBOX_TIMEOUT_S})
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["sandboxID"]
    if paused:
        assert control.post(f"/sandboxes/{sandbox_id}/pause").status_code == 204
    return sandbox_id


def _live_sandbox_ids(control: httpx.Client) -> list[str]:
    """Every running or paused sandbox, through the v2 list's pages."""
    ids: list[str] = []
    params = {"state": "running,paused", "limit": "100"}
    for _ in range(LIST_PAGES_MAX):
        page = control.get("/v2/sandboxes", params=params)
        assert page.status_code == 200, page.text
        ids += [listed["sandboxID"] for listed in page.json()]
        token = page.headers.get("X-Next-Token")
        if not token:
            break
        params["nextToken"] = token
    return ids


def _kill_all(control: httpx.Client) -> list[str]:
    """DELETE every live sandbox; returns the IDs still live after."""
    for sandbox_id in _live_sandbox_ids(control):
        control.delete(f"/sandboxes/{sandbox_id}")
    return _live_sandbox_ids(control)


@pytest.fixture(scope="module")
def real_ids(control: httpx.Client) -> Iterator[dict[str, str]]:
    """A shared sandbox (key ""), one per operation of OWN_SANDBOX_OPERATIONS; all killed after,
    with whatever the fuzzer started."""
    try:
        ids = {"": _create(control, paused=False)}
        for name, paused in OWN_SANDBOX_OPERATIONS.items():
            ids[name] = _create(control, paused=paused)
        yield ids
    finally:
        assert _kill_all(control) == []


def _served(spec: Path, operations: dict[str, tuple[str, ...]], api_url: str) -> dict[str, Any]:
    """The spec with only `operations`, in their order, and sandboxd as its only server."""
    raw: dict[str, Any] = yaml.safe_load(spec.read_text())
    raw["servers"] = [{"url": api_url}]
    raw["paths"] = {
        path: {
            key: value
            for key, value in raw["paths"][path].items()
            if key not in ("get", "put", "post", "delete", "patch") or key in methods
        }
        for path, methods in operations.items()
    }
    # Some bodies (NewSandbox, ResumedSandbox) list properties but no `type`, so any JSON,
    # `null` or `3` too, would fit them; E2B decodes them into objects all the same. Typed,
    # positive cases are objects and negative ones still send everything else.
    for schema in raw["components"]["schemas"].values():
        if "properties" in schema and "type" not in schema:
            schema["type"] = "object"
    return raw


def _config(sandboxd: RunningSandboxd, real_ids: dict[str, str]) -> schemathesis.Config:
    """Requests to sandboxd only, with its key, a timeout and the real IDs to draw from."""
    real_id = {"probability": REAL_ID_PROBABILITY}
    return schemathesis.Config.from_dict(
        {
            "base-url": sandboxd.api_url,
            "headers": {"X-API-Key": sandboxd.api_key},
            "request-timeout": REQUEST_TIMEOUT_S,
            "dictionaries": {
                "shared-sandbox": {"values": [real_ids[""]]},
                "team": {"values": [sandboxd.team_id]},
                "template": {"values": ["base", "small"]},
                **{name: {"values": [real_ids[name]]} for name in OWN_SANDBOX_OPERATIONS},
            },
            "parameters": {
                "path.sandboxID": {"dictionary": "shared-sandbox", **real_id},
                "path.teamID": {"dictionary": "team", **real_id},
                "body.templateID": {"dictionary": "template", **real_id},
            },
            "operations": [
                {
                    "include-name": name,
                    "parameters": {"path.sandboxID": {"dictionary": name, **real_id}},
                }
                for name in OWN_SANDBOX_OPERATIONS
            ],
        }
    )


@pytest.fixture(scope="module")
def schemas(
    sandboxd: RunningSandboxd, real_ids: dict[str, str]
) -> dict[Path, schemathesis.BaseSchema]:
    """Each spec, cut down to what sandboxd serves, with the fuzzing config."""
    config = _config(sandboxd, real_ids)
    return {
        spec: schemathesis.openapi.from_dict(
            _served(spec, operations, sandboxd.api_url), config=config
        )
        for spec, operations in SPECS.items()
    }


def error_body_is_e2b_shaped(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx and 5xx is JSON `{"code": <the status>, "message": <str>}`."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert type(body.get("code")) is int, f"'code' is not an integer: {body!r}"
    assert isinstance(body.get("message"), str), f"'message' is not a string: {body!r}"
    assert body["code"] == response.status_code, f"'code' is not the status: {body!r}"
    return None


CHECKS: list[schemathesis.CheckFunction] = [not_a_server_error, error_body_is_e2b_shaped]


@pytest.mark.parametrize(
    ("spec", "method", "path"),
    [
        pytest.param(spec, method.upper(), path, id=f"{method.upper()} {path}")
        for spec, operations in SPECS.items()
        for path, methods in operations.items()
        for method in methods
    ],
)
def test_no_5xx_and_errors_are_e2b_shaped(
    schemas: dict[Path, schemathesis.BaseSchema], spec: Path, method: str, path: str
) -> None:
    operation = schemas[spec][path][method]
    # Data the spec allows and data it does not.
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    # A fixed, small number of examples, the same ones every run.
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=DEADLINE,
        derandomize=True,
        database=None,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(case=cases)
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()
