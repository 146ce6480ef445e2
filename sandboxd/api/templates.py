"""Template routes: the templates sandboxd can start, as E2B lists them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import int_query
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem
from sandboxd.records import ENVD_VERSION, iso
from sandboxd.templates import TEMPLATES, Template

PAGE_LIMIT_MAX = 100


def _body(template: Template, manager: SandboxManager) -> dict[str, object]:
    """A Template as E2B lists it; spawn counts run from sandboxd's start."""
    started = iso(manager.started_at)
    spawn_count, last_spawned_at = manager.spawns.get(template.template_id, (0, None))
    return {
        "templateID": template.template_id,
        "buildID": template.build_id,
        "cpuCount": template.cpu_count,
        "memoryMB": template.memory_mb,
        "diskSizeMB": template.disk_size_mb,
        "public": True,
        "aliases": [template.alias],
        "names": [template.alias],
        "createdAt": started,
        "updatedAt": started,
        "createdBy": None,
        "lastSpawnedAt": None if last_spawned_at is None else iso(last_spawned_at),
        "spawnCount": spawn_count,
        "buildCount": 1,
        "envdVersion": ENVD_VERSION,
        "buildStatus": "ready",
    }


async def list_templates(request: Request) -> Response:
    """`GET /v2/templates`: the built-in templates, all on one page (there are few)."""
    int_query(request, "limit", PAGE_LIMIT_MAX, 1, PAGE_LIMIT_MAX)  # refuse a bad limit
    manager: SandboxManager = request.app.state.manager
    return JSONResponse([_body(template, manager) for template in TEMPLATES.values()])


async def check_alias(request: Request) -> Response:
    """`GET /templates/aliases/{alias}`: 200 with the template's ID when a template has that
    alias, else 404 (the SDK's `Template.exists` reads a 404 as False, docs/E2B-API.md)."""
    alias = request.path_params["alias"]
    template = next((t for t in TEMPLATES.values() if t.alias == alias), None)
    if template is None:
        raise ApiProblem(404, f"template alias '{alias}' not found")
    return JSONResponse({"templateID": template.template_id, "public": True})


ROUTES = [
    Route("/v2/templates", list_templates, methods=["GET"]),
    # `path`: a namespaced alias (`team/name`) arrives with its slash decoded.
    Route("/templates/aliases/{alias:path}", check_alias, methods=["GET"]),
]
