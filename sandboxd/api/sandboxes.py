"""Sandbox routes: create, list, get, kill, pause, connect/resume, timeout, refresh."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api import listing
from sandboxd.api.network import address_list
from sandboxd.api.parsing import env_map, field_of, int_query, json_object, string_map
from sandboxd.manager import SandboxManager
from sandboxd.planning import CreateRequest
from sandboxd.problems import ApiProblem

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
        allow_out=address_list(field_of(body, "network", dict, {}), "allowOut"),
        deny_out=address_list(field_of(body, "network", dict, {}), "denyOut"),
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
    """`POST /sandboxes/{id}/timeout`: the end becomes now + `timeout`. The spec allows 0,
    which ends the sandbox at once (killed, or paused with autoPause; docs/E2B-API.md), so
    the answer comes after that end rather than at the next expiry check."""
    body = await json_object(request)
    timeout_s = field_of(body, "timeout", int)
    if timeout_s is None:
        raise ApiProblem(400, "'timeout' is required")
    manager = _manager(request)
    manager.set_timeout(request.path_params["sandbox_id"], timeout_s)
    if timeout_s == 0:
        await manager.expire_due()
    return Response(status_code=204)


async def refresh_sandbox(request: Request) -> Response:
    body = await json_object(request)  # E2B refuses an empty body; {} is fine
    duration_s = field_of(body, "duration", int)
    _manager(request).refresh(request.path_params["sandbox_id"], duration_s)
    return Response(status_code=204)


async def list_sandboxes_v1(request: Request) -> Response:
    """Deprecated: running sandboxes only, filtered by metadata, no paging."""
    wanted = listing.v1_filter(request.query_params)
    records = wanted.select(live.record for live in _manager(request).live.values())
    return JSONResponse([record.listed() for record in records])


async def list_sandboxes_v2(request: Request) -> Response:
    """Every filter of the spec, in the asked order, a page at a time (docs/E2B-API.md)."""
    wanted = listing.v2_filter(request.query_params)
    limit = int_query(request, "limit", listing.PAGE_LIMIT_MAX, 1, listing.PAGE_LIMIT_MAX)
    assert limit is not None
    records = wanted.select(live.record for live in _manager(request).live.values())
    page = listing.page_of(
        records, request.query_params.get("nextToken"), limit, newest_first=wanted.newest_first
    )
    headers = {}
    if page.next_token is not None:
        headers["X-Next-Token"] = page.next_token
    if "running" in wanted.states:
        headers["X-Total-Running"] = str(sum(1 for r in records if r.state == "running"))
    return JSONResponse([record.listed() for record in page.records], headers=headers)


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
