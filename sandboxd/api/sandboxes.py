"""Sandbox routes: create, list, get, kill, pause, connect/resume, timeout, refresh."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import env_map, field_of, int_query, json_object, string_map
from sandboxd.manager import SandboxManager
from sandboxd.planning import CreateRequest
from sandboxd.problems import ApiProblem
from sandboxd.records import SandboxRecord

STATES = ("running", "paused")
PAGE_LIMIT_MAX = 100
# What the v2 connect gives a sandbox when the SDK names no timeout (the SDK's default).
CONNECT_DEFAULT_TIMEOUT_S = 300


def _manager(request: Request) -> SandboxManager:
    manager: SandboxManager = request.app.state.manager
    return manager


async def create_sandbox(request: Request) -> Response:
    """`POST /sandboxes`: `secure` is kept as asked, but every sandbox gets an envd access
    token and the answer carries it (`envdAccessToken`), so the SDK sends it either way."""
    return await _create(request, secure_by_default=False)


async def create_sandbox_v2(request: Request) -> Response:
    """`POST /v2/sandboxes`, which the SDK uses: no `secure` field, always secured."""
    return await _create(request, secure_by_default=True)


async def _create(request: Request, *, secure_by_default: bool) -> Response:
    body = await json_object(request)
    template = field_of(body, "templateID", str)
    if not template:
        raise ApiProblem(400, "'templateID' is required")
    timeout_s = field_of(body, "timeout", int, 15)
    create = CreateRequest(
        template=template,
        timeout_s=timeout_s,
        auto_pause=field_of(body, "autoPause", bool, False),
        secure=field_of(body, "secure", bool, secure_by_default),
        allow_internet_access=field_of(body, "allow_internet_access", bool),
        metadata=string_map(body, "metadata"),
        env_vars=env_map(body, "envVars"),
        cpu_count=field_of(body, "cpuCount", int),
        memory_mb=field_of(body, "memoryMB", int),
        disk_size_mb=field_of(body, "diskSizeMB", int),
    )
    idempotency_key = request.headers.get("idempotency-key")
    record = await _manager(request).create(create, idempotency_key=idempotency_key)
    return JSONResponse(record.created(), status_code=201)


async def get_sandbox(request: Request) -> Response:
    manager = _manager(request)
    live = manager.get(request.path_params["sandbox_id"])
    return JSONResponse(live.record.detail(manager.isolation_note))


async def kill_sandbox(request: Request) -> Response:
    await _manager(request).kill(request.path_params["sandbox_id"])
    return Response(status_code=204)


async def pause_sandbox(request: Request) -> Response:
    await json_object(request, required=False)  # memory: true is the only kind we have
    await _manager(request).pause(request.path_params["sandbox_id"])
    return Response(status_code=204)


async def connect_sandbox(request: Request) -> Response:
    """`POST /sandboxes/{id}/connect`: `timeout` is required."""
    body = await json_object(request)
    timeout_s = field_of(body, "timeout", int)
    if timeout_s is None:
        raise ApiProblem(400, "'timeout' is required")
    return await _connect(request, timeout_s)


async def connect_sandbox_v2(request: Request) -> Response:
    """`POST /v2/sandboxes/{id}/connect`, which the SDK uses: `timeout` may be left out."""
    body = await json_object(request, required=False)
    return await _connect(request, field_of(body, "timeout", int, CONNECT_DEFAULT_TIMEOUT_S))


async def _connect(request: Request, timeout_s: int) -> Response:
    record, resumed = await _manager(request).connect(request.path_params["sandbox_id"], timeout_s)
    return JSONResponse(record.created(), status_code=201 if resumed else 200)


async def resume_sandbox(request: Request) -> Response:
    """The deprecated resume: like connect, but a running sandbox is a 409."""
    body = await json_object(request, required=False)
    timeout_s = field_of(body, "timeout", int, 15)
    manager = _manager(request)
    sandbox_id = request.path_params["sandbox_id"]
    if manager.get(sandbox_id).record.state == "running":
        raise ApiProblem(409, f"sandbox '{sandbox_id}' is already running")
    record, _ = await manager.connect(sandbox_id, timeout_s)
    return JSONResponse(record.created(), status_code=201)


async def set_timeout(request: Request) -> Response:
    body = await json_object(request)
    timeout_s = field_of(body, "timeout", int)
    if timeout_s is None:
        raise ApiProblem(400, "'timeout' is required")
    _manager(request).set_timeout(request.path_params["sandbox_id"], timeout_s)
    return Response(status_code=204)


async def refresh_sandbox(request: Request) -> Response:
    body = await json_object(request)  # E2B refuses an empty body; {} is fine
    duration_s = field_of(body, "duration", int)
    _manager(request).refresh(request.path_params["sandbox_id"], duration_s)
    return Response(status_code=204)


async def list_sandboxes_v1(request: Request) -> Response:
    """Deprecated: running sandboxes only, no paging."""
    records = _filtered(request, ("running",))
    return JSONResponse([record.listed() for record in records])


async def list_sandboxes_v2(request: Request) -> Response:
    states = _states(request.query_params.get("state"))
    limit = int_query(request, "limit", PAGE_LIMIT_MAX, 1, PAGE_LIMIT_MAX)
    assert limit is not None
    records = _filtered(request, states)
    after = _decode_token(request.query_params.get("nextToken"))
    if after is not None:
        records = [r for r in records if (r.started_at.isoformat(), r.sandbox_id) < after]
    page, rest = records[:limit], records[limit:]
    headers = {}
    if rest:
        last = page[-1]
        headers["X-Next-Token"] = _encode_token(last.started_at.isoformat(), last.sandbox_id)
    running = sum(1 for record in records if record.state == "running")
    if "running" in states:
        headers["X-Total-Running"] = str(running)
    return JSONResponse([record.listed() for record in page], headers=headers)


def _states(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return STATES
    states = tuple(part for part in raw.split(",") if part)
    unknown = [state for state in states if state not in STATES]
    if unknown:
        raise ApiProblem(400, f"unknown state {unknown[0]!r}: use running or paused")
    return states


def _filtered(request: Request, states: tuple[str, ...]) -> list[SandboxRecord]:
    """Live sandboxes in `states` whose metadata has every pair asked for, newest first."""
    wanted = dict(parse_qsl(request.query_params.get("metadata", ""), keep_blank_values=True))
    records = [
        live.record
        for live in _manager(request).live.values()
        if live.record.state in states
        and all(live.record.metadata.get(key) == value for key, value in wanted.items())
    ]
    return sorted(records, key=lambda r: (r.started_at.isoformat(), r.sandbox_id), reverse=True)


def _encode_token(started_at: str, sandbox_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([started_at, sandbox_id]).encode()).decode()


def _decode_token(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        started_at, sandbox_id = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise ApiProblem(400, "nextToken is not a token this server gave") from None
    return str(started_at), str(sandbox_id)


ROUTES = [
    Route("/sandboxes", create_sandbox, methods=["POST"]),
    Route("/sandboxes", list_sandboxes_v1, methods=["GET"]),
    Route("/v2/sandboxes", list_sandboxes_v2, methods=["GET"]),
    Route("/v2/sandboxes", create_sandbox_v2, methods=["POST"]),
    Route("/v2/sandboxes/{sandbox_id}/connect", connect_sandbox_v2, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}", get_sandbox, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}", kill_sandbox, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/pause", pause_sandbox, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/connect", connect_sandbox, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/resume", resume_sandbox, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/timeout", set_timeout, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/refreshes", refresh_sandbox, methods=["POST"]),
]
