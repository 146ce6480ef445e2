"""Template routes: create, list, get, update and delete templates, their tags and aliases.

The built-in templates (sandboxd/templates/builtin.py) are listed beside the built ones,
cannot be changed, and have one ready build each. Builds, files and logs:
template_builds.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import field_of, int_query, json_object
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem
from sandboxd.records import ENVD_VERSION, iso
from sandboxd.templates import MAX_CPU_COUNT, MAX_MEMORY_MB, MIN_MEMORY_MB, TEMPLATES, Template
from sandboxd.templates.builtin import find_built_in
from sandboxd.templates.catalog import TemplateCatalog
from sandboxd.templates.names import check_tag_room, check_tags, split_name
from sandboxd.templates.records import BuildEntry, TemplateEntry
from sandboxd.templates.service import TemplateService

PAGE_LIMIT_MAX = 100
BUILDS_PAGE_DEFAULT = 100


def service(request: Request) -> TemplateService:
    templates: TemplateService = request.app.state.templates
    return templates


def _manager(request: Request) -> SandboxManager:
    manager: SandboxManager = request.app.state.manager
    return manager


def _spawns(manager: SandboxManager, template_id: str) -> tuple[int, str | None]:
    count, last = manager.spawns.get(template_id, (0, None))
    return count, None if last is None else iso(last)


def _built_in_body(template: Template, manager: SandboxManager) -> dict[str, object]:
    """A built-in Template as E2B lists it; spawn counts run from sandboxd's start."""
    started = iso(manager.started_at)
    spawn_count, last_spawned_at = _spawns(manager, template.template_id)
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
        "lastSpawnedAt": last_spawned_at,
        "spawnCount": spawn_count,
        "buildCount": 1,
        "envdVersion": ENVD_VERSION,
        "buildStatus": "ready",
    }


def _built_body(
    template: TemplateEntry, catalog: TemplateCatalog, manager: SandboxManager
) -> dict[str, object]:
    """A built Template: `buildID` is its newest ready build (else its newest build) and
    `buildStatus` that of its newest build."""
    builds = catalog.builds_of(template.template_id)
    ready = catalog.latest_ready(template)
    shown = ready or (builds[0] if builds else None)
    spawn_count, last_spawned_at = _spawns(manager, template.template_id)
    return {
        "templateID": template.template_id,
        "buildID": shown.build_id if shown else "",
        "cpuCount": template.cpu_count,
        "memoryMB": template.memory_mb,
        "diskSizeMB": template.disk_size_mb,
        "public": template.public,
        "aliases": [template.name],
        "names": [template.name],
        "createdAt": template.created_at,
        "updatedAt": template.updated_at,
        "createdBy": None,
        "lastSpawnedAt": last_spawned_at,
        "spawnCount": spawn_count,
        "buildCount": len(builds),
        "envdVersion": ENVD_VERSION,
        "buildStatus": builds[0].status if builds else "waiting",
    }


def build_body(build: BuildEntry) -> dict[str, object]:
    """A TemplateBuild as `GET /templates/{id}` lists it."""
    body: dict[str, object] = {
        "buildID": build.build_id,
        "status": build.status,
        "createdAt": build.created_at,
        "updatedAt": build.updated_at,
        "cpuCount": build.cpu_count,
        "memoryMB": build.memory_mb,
        "diskSizeMB": build.disk_size_mb,
        "envdVersion": ENVD_VERSION,
    }
    if build.finished_at is not None:
        body["finishedAt"] = build.finished_at
    return body


async def list_templates(request: Request) -> Response:
    """`GET /v2/templates` (and the v1 `GET /templates`): the built-in templates, then the
    built ones, all on one page (there are at most SANDBOXD_MAX_TEMPLATES)."""
    int_query(request, "limit", PAGE_LIMIT_MAX, 1, PAGE_LIMIT_MAX)  # refuse a bad limit
    manager = _manager(request)
    catalog = service(request).catalog
    bodies = [_built_in_body(template, manager) for template in TEMPLATES.values()]
    built = sorted(catalog.templates.values(), key=lambda t: t.created_at)
    bodies += [_built_body(template, catalog, manager) for template in built]
    return JSONResponse(bodies)


def _limit(body: dict[str, object], name: str, lowest: int, highest: int, default: int) -> int:
    value = field_of(body, name, int, default)
    assert isinstance(value, int)
    if not lowest <= value <= highest:
        raise ApiProblem(400, f"{name} must be between {lowest} and {highest}, got {value}")
    return value


async def create_template(request: Request) -> Response:
    """`POST /v3/templates`: 202 with the template and the build to start. A name the team
    already has gets a new build of that template, as on E2B."""
    body = await json_object(request)
    raw_name = field_of(body, "name", str) or field_of(body, "alias", str)
    if not raw_name:
        raise ApiProblem(400, "'name' is required")
    tags = check_tags(body.get("tags") if body.get("tags") is not None else [])
    base = TEMPLATES["base"]
    cpu_count = _limit(body, "cpuCount", 1, MAX_CPU_COUNT, base.cpu_count)
    memory_mb = _limit(body, "memoryMB", MIN_MEMORY_MB, MAX_MEMORY_MB, base.memory_mb)
    template, build, assigned = service(request).catalog.request_build(
        raw_name, tags, cpu_count, memory_mb, base.disk_size_mb
    )
    return JSONResponse(
        {
            "templateID": template.template_id,
            "buildID": build.build_id,
            "public": template.public,
            "aliases": [template.name],
            "names": [template.name],
            "tags": assigned,
        },
        status_code=202,
    )


def _own_template(request: Request) -> TemplateEntry:
    """The built template the path names; a built-in one cannot be changed (403)."""
    wanted = request.path_params["template_id"]
    if find_built_in(wanted) is not None:
        raise ApiProblem(403, f"template '{wanted}' is built into sandboxd and cannot be changed")
    return service(request).catalog.get(wanted)


async def get_template(request: Request) -> Response:
    """`GET /templates/{id}`: the template with its builds, newest first, a page at a time
    (`nextToken` is the offset of the next page, in the X-Next-Token header)."""
    manager = _manager(request)
    limit = int_query(request, "limit", BUILDS_PAGE_DEFAULT, 1, PAGE_LIMIT_MAX)
    assert limit is not None
    token = request.query_params.get("nextToken") or "0"
    if not token.isdigit():
        raise ApiProblem(400, "query parameter 'nextToken' is not a token this server gave")
    offset = int(token)
    wanted = request.path_params["template_id"]
    built_in = find_built_in(wanted)
    if built_in is not None:
        body = _built_in_body(built_in, manager)
        builds: list[dict[str, object]] = [
            {
                "buildID": built_in.build_id,
                "status": "ready",
                "createdAt": body["createdAt"],
                "updatedAt": body["updatedAt"],
                "cpuCount": built_in.cpu_count,
                "memoryMB": built_in.memory_mb,
                "diskSizeMB": built_in.disk_size_mb,
                "envdVersion": ENVD_VERSION,
            }
        ]
    else:
        catalog = service(request).catalog
        template = catalog.get(wanted)
        body = _built_body(template, catalog, manager)
        builds = [build_body(build) for build in catalog.builds_of(template.template_id)]
    page = builds[offset : offset + limit]
    headers = {}
    if offset + limit < len(builds):
        headers["X-Next-Token"] = str(offset + limit)
    answer = {key: body[key] for key in ("templateID", "public", "aliases", "names")}
    answer.update(
        createdAt=body["createdAt"],
        updatedAt=body["updatedAt"],
        lastSpawnedAt=body["lastSpawnedAt"],
        spawnCount=body["spawnCount"],
        builds=page,
    )
    return JSONResponse(answer, headers=headers)


async def update_template(request: Request) -> Response:
    """`PATCH /v2/templates/{id}` (and v1): `public`; answers the template's names."""
    template = _own_template(request)
    body = await json_object(request)
    public = field_of(body, "public", bool)
    catalog = service(request).catalog
    if public is not None:
        template.public = public
        template.updated_at = iso(catalog.clock())
        catalog.save_template(template)
    return JSONResponse({"names": [template.name]})


async def delete_template(request: Request) -> Response:
    """`DELETE /templates/{id}`: its running builds are stopped, its builds and layers
    removed; sandboxes started from it keep running (each has its own copy of its home)."""
    template = _own_template(request)
    templates = service(request)
    templates.builds.cancel_template(template.template_id)
    templates.catalog.delete(template)
    return Response(status_code=204)


async def check_alias(request: Request) -> Response:
    """`GET /templates/aliases/{alias}`: 200 with the template's ID when a template has that
    alias, else 404 (the SDK's `Template.exists` reads a 404 as False, docs/E2B-API.md)."""
    alias = request.path_params["alias"]
    built_in = next((t for t in TEMPLATES.values() if t.alias == alias), None)
    if built_in is not None:
        return JSONResponse({"templateID": built_in.template_id, "public": True})
    template = service(request).catalog.lookup(alias)
    if template is None or template.name != alias:
        raise ApiProblem(404, f"template alias '{alias}' not found")
    return JSONResponse({"templateID": template.template_id, "public": template.public})


# --- tags ------------------------------------------------------------------------------


async def assign_tags(request: Request) -> Response:
    """`POST /templates/tags`: `target` ("name:tag", or "name" for the newest build) gets
    more tags; 201 with the tags and the build they point at."""
    body = await json_object(request)
    target = field_of(body, "target", str)
    if not target:
        raise ApiProblem(400, "'target' is required")
    tags = check_tags(body.get("tags"))
    if not tags:
        raise ApiProblem(400, "'tags' must name at least one tag")
    name, tag = split_name(target)
    catalog = service(request).catalog
    template = catalog.get(name)
    if tag is not None:
        pointed = template.tags.get(tag)
        if pointed is None:
            raise ApiProblem(404, f"tag '{tag}' of template '{name}' not found")
        build_id = pointed["build_id"]
    else:
        builds = catalog.builds_of(template.template_id)
        if not builds:
            raise ApiProblem(404, f"template '{name}' has no build")
        build_id = builds[0].build_id
    check_tag_room(template.tags, tags)
    now = iso(catalog.clock())
    for each in tags:
        template.tags[each] = {"build_id": build_id, "created_at": now}
    catalog.save_template(template)
    return JSONResponse({"tags": tags, "buildID": build_id}, status_code=201)


async def delete_tags(request: Request) -> Response:
    """`DELETE /templates/tags`: the named tags of template `name` (404 for one it lacks)."""
    body = await json_object(request)
    name = field_of(body, "name", str)
    if not name:
        raise ApiProblem(400, "'name' is required")
    tags = check_tags(body.get("tags"))
    catalog = service(request).catalog
    template = catalog.get(split_name(name)[0])
    missing = [tag for tag in tags if tag not in template.tags]
    if missing:
        raise ApiProblem(404, f"tag '{missing[0]}' of template '{template.name}' not found")
    for tag in tags:
        del template.tags[tag]
    catalog.save_template(template)
    return Response(status_code=204)


async def list_tags(request: Request) -> Response:
    """`GET /templates/{id}/tags`: each tag with its build and when it was set."""
    wanted = request.path_params["template_id"]
    if find_built_in(wanted) is not None:
        return JSONResponse([])
    template = service(request).catalog.get(wanted)
    return JSONResponse(
        [
            {"tag": tag, "buildID": entry["build_id"], "createdAt": entry["created_at"]}
            for tag, entry in sorted(template.tags.items())
        ]
    )


ROUTES = [
    Route("/v2/templates", list_templates, methods=["GET"]),
    Route("/templates", list_templates, methods=["GET"]),
    Route("/v3/templates", create_template, methods=["POST"]),
    Route("/templates/tags", assign_tags, methods=["POST"]),
    Route("/templates/tags", delete_tags, methods=["DELETE"]),
    # `path`: a namespaced alias (`team/name`) arrives with its slash decoded.
    Route("/templates/aliases/{alias:path}", check_alias, methods=["GET"]),
    Route("/templates/{template_id}", get_template, methods=["GET"]),
    Route("/templates/{template_id}", delete_template, methods=["DELETE"]),
    Route("/templates/{template_id}", update_template, methods=["PATCH"]),
    Route("/v2/templates/{template_id}", update_template, methods=["PATCH"]),
    Route("/templates/{template_id}/tags", list_tags, methods=["GET"]),
]
