"""Log and lifecycle-event routes."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import bool_query, int_query
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem
from sandboxd.records import iso
from sandboxd.store import LOG_LEVELS, LogLine

LOGS_LIMIT_MAX = 1000
SEARCH_MAX_CHARS = 256
EVENTS_LIMIT_MAX = 100


def _manager(request: Request) -> SandboxManager:
    manager: SandboxManager = request.app.state.manager
    return manager


def _entry(line: LogLine) -> dict[str, object]:
    return {
        "timestamp": iso(datetime.fromtimestamp(line.ts_unix_ms / 1000, UTC)),
        "level": line.level,
        "message": line.message,
        "fields": line.fields,
    }


def _logs(request: Request, *, v2: bool) -> list[LogLine]:
    manager = _manager(request)
    record = manager.known_record(request.path_params["sandbox_id"])
    limit = int_query(request, "limit", LOGS_LIMIT_MAX, 0, LOGS_LIMIT_MAX)
    assert limit is not None
    if not v2:
        cursor_ms = int_query(request, "start", None, 0)
        return manager.store.logs(record.sandbox_id, cursor_ms, limit, True, None, None)
    direction = request.query_params.get("direction", "forward")
    if direction not in ("forward", "backward"):
        raise ApiProblem(400, "direction must be forward or backward")
    level = request.query_params.get("level") or None
    if level is not None and level not in LOG_LEVELS:
        raise ApiProblem(400, f"level must be one of {', '.join(LOG_LEVELS)}")
    search = request.query_params.get("search") or None
    if search is not None and len(search) > SEARCH_MAX_CHARS:
        raise ApiProblem(400, f"search must be at most {SEARCH_MAX_CHARS} characters")
    cursor_ms = int_query(request, "cursor", None, 0)
    forward = direction == "forward"
    return manager.store.logs(record.sandbox_id, cursor_ms, limit, forward, level, search)


async def logs_v2(request: Request) -> Response:
    return JSONResponse({"logs": [_entry(line) for line in _logs(request, v2=True)]})


async def logs_v1(request: Request) -> Response:
    lines = _logs(request, v2=False)
    return JSONResponse(
        {
            "logs": [
                {"timestamp": _entry(line)["timestamp"], "line": line.message} for line in lines
            ],
            "logEntries": [_entry(line) for line in lines],
        }
    )


def _events(request: Request, sandbox_id: str | None) -> Response:
    offset = int_query(request, "offset", 0, 0)
    limit = int_query(request, "limit", 10, 1, EVENTS_LIMIT_MAX)
    assert offset is not None and limit is not None
    oldest_first = bool_query(request, "orderAsc", False)
    types = request.query_params.getlist("types")
    store = _manager(request).store
    return JSONResponse(store.events(sandbox_id, types, offset, limit, oldest_first))


async def sandbox_events(request: Request) -> Response:
    record = _manager(request).known_record(request.path_params["sandbox_id"])
    return _events(request, record.sandbox_id)


async def team_events(request: Request) -> Response:
    return _events(request, None)


ROUTES = [
    Route("/v2/sandboxes/{sandbox_id}/logs", logs_v2, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/logs", logs_v1, methods=["GET"]),
    Route("/events/sandboxes", team_events, methods=["GET"]),
    Route("/events/sandboxes/{sandbox_id}", sandbox_events, methods=["GET"]),
]
