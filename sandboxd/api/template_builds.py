"""Template build routes: build-context files (link and upload), start, status and logs."""

from __future__ import annotations

import re
import time
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import int_query, json_object
from sandboxd.api.templates import service
from sandboxd.problems import ApiProblem
from sandboxd.store import LOG_LEVELS
from sandboxd.templates.builds import parse_start
from sandboxd.templates.files import UploadTooLarge, is_files_hash

LOGS_PAGE_MAX = 100
_UPLOAD_PATH = re.compile(r"/templates/[^/]+/files/[0-9a-f]{64}/upload")


def is_upload_path(path: str) -> bool:
    """Whether `path` is a signed upload link's (checked by its signature, not the key)."""
    return _UPLOAD_PATH.fullmatch(path) is not None


async def file_link(request: Request) -> Response:
    """`GET /templates/{id}/files/{hash}`: 201 (E2B's code for this GET) with `present` and a
    signed link to PUT the files to (the SDK uploads when they are not present, or forced)."""
    templates = service(request)
    template = templates.catalog.get(request.path_params["template_id"])
    files_hash = request.path_params["hash"]
    if not is_files_hash(files_hash):
        raise ApiProblem(400, "the files hash must be 64 lowercase hex digits (a SHA-256)")
    body: dict[str, object] = {"present": templates.files.present(files_hash)}
    # A link even when present: the SDK uploads again to it when forced (forceUpload).
    body["url"] = templates.files.link(
        str(request.base_url), template.template_id, files_hash, time.time()
    )
    return JSONResponse(body, status_code=201)


async def upload_file(request: Request) -> Response:
    """The signed link's PUT: the tar streamed to disk, cut off past the size limit (413)."""
    templates = service(request)
    template_id = request.path_params["template_id"]
    files_hash = request.path_params["hash"]
    params = request.query_params
    refusal = templates.files.refusal(
        template_id, files_hash, params.get("expires", ""), params.get("signature", ""),
        time.time(),
    )  # fmt: skip
    if refusal is not None:
        raise ApiProblem(403, refusal)
    if templates.catalog.lookup(template_id) is None:
        raise ApiProblem(404, f"template '{template_id}' not found")
    limit = templates.files.max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, f"the upload is over the limit of {limit // 2**20} MiB")
    try:
        await templates.files.receive(files_hash, request.stream())
    except UploadTooLarge:
        raise ApiProblem(413, f"the upload is over the limit of {limit // 2**20} MiB") from None
    return Response(status_code=200)


async def start_build(request: Request) -> Response:
    """`POST /v2/templates/{id}/builds/{buildID}`: 202, the build queued."""
    templates = service(request)
    template = templates.catalog.get(request.path_params["template_id"])
    build = templates.catalog.build(template, request.path_params["build_id"])
    started = parse_start(await json_object(request))
    templates.builds.start(template, build, started)
    return Response(status_code=202)


def _level_query(request: Request) -> str | None:
    level = request.query_params.get("level") or None
    if level is not None and level not in LOG_LEVELS:
        raise ApiProblem(400, f"query parameter 'level' must be one of {', '.join(LOG_LEVELS)}")
    return level


def _at_least(entry: dict[str, object], level: str | None) -> bool:
    return level is None or LOG_LEVELS.index(str(entry["level"])) >= LOG_LEVELS.index(level)


async def build_status(request: Request) -> Response:
    """`GET .../builds/{buildID}/status`: status, the log lines from `logsOffset` (at most
    `limit`, 100), and the reason of a failed build. An unknown build is E2B's 400."""
    templates = service(request)
    template = templates.catalog.get(request.path_params["template_id"])
    build = templates.catalog.build(template, request.path_params["build_id"])
    offset = int_query(request, "logsOffset", 0, 0)
    limit = int_query(request, "limit", LOGS_PAGE_MAX, 0, LOGS_PAGE_MAX)
    level = _level_query(request)
    assert offset is not None and limit is not None
    rows = templates.catalog.store.build_logs(build.build_id, offset, limit)
    entries = [entry for _, entry in rows if _at_least(entry, level)]
    body: dict[str, object] = {
        "templateID": template.template_id,
        "buildID": build.build_id,
        "status": build.status,
        "logEntries": entries,
        "logs": [f"{entry['timestamp']} {entry['message']}" for entry in entries],
    }
    if build.reason is not None:
        body["reason"] = build.reason
    return JSONResponse(body)


async def build_logs(request: Request) -> Response:
    """`GET .../builds/{buildID}/logs`: lines from `cursor` (ms) on, forward or backward."""
    templates = service(request)
    template = templates.catalog.get(request.path_params["template_id"])
    build = templates.catalog.build(template, request.path_params["build_id"])
    cursor_ms = int_query(request, "cursor", None, 0)
    limit = int_query(request, "limit", LOGS_PAGE_MAX, 0, LOGS_PAGE_MAX)
    level = _level_query(request)
    direction = request.query_params.get("direction") or "forward"
    if direction not in ("forward", "backward"):
        raise ApiProblem(400, "query parameter 'direction' must be forward or backward")
    source = request.query_params.get("source") or "persistent"
    if source not in ("temporary", "persistent"):
        raise ApiProblem(400, "query parameter 'source' must be temporary or persistent")
    assert limit is not None
    # A build keeps at most builds.MAX_LOG_LINES_PER_BUILD lines: reading them all is bounded.
    rows = templates.catalog.store.build_logs(build.build_id, 0, 2**31)
    entries = [entry for _, entry in rows if _at_least(entry, level)]
    if cursor_ms is not None:
        entries = [e for e in entries if _in_direction(e, cursor_ms, direction)]
    if direction == "backward":
        entries = entries[::-1]
    return JSONResponse({"logs": entries[:limit]})


def _in_direction(entry: dict[str, object], cursor_ms: int, direction: str) -> bool:
    at_ms = int(
        datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp() * 1000
    )
    return at_ms >= cursor_ms if direction == "forward" else at_ms <= cursor_ms


ROUTES = [
    Route("/templates/{template_id}/files/{hash}", file_link, methods=["GET"]),
    Route("/templates/{template_id}/files/{hash}/upload", upload_file, methods=["PUT"]),
    Route("/v2/templates/{template_id}/builds/{build_id}", start_build, methods=["POST"]),
    Route("/templates/{template_id}/builds/{build_id}/status", build_status, methods=["GET"]),
    Route("/templates/{template_id}/builds/{build_id}/logs", build_logs, methods=["GET"]),
]
