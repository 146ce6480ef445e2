"""Template actions: list, create, build and publish templates."""

from __future__ import annotations

from e2bapi.decoding import decode
from e2bapi.errors import NotFoundError
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.logs import LogLevel
from e2bapi.models.templates import (
    Template,
    TemplateAliasResponse,
    TemplateBuildFileUpload,
    TemplateBuildInfo,
    TemplateBuildRequestV3,
    TemplateBuildStartV2,
    TemplateRequestResponseV3,
    TemplateTag,
    TemplateUpdateRequest,
    TemplateUpdateResponse,
    TemplateWithBuilds,
)
from e2bapi.paging import MAX_PAGE_LIMIT, every_token_page

BUILD_LOGS_MAX_LIMIT = 100


def list_templates(
    team_id: str | None = None, page_limit: int = MAX_PAGE_LIMIT
) -> Exchange[list[Template]]:
    """Every template the key can see, across every page."""
    query = [("teamID", team_id)] if team_id else []
    return (yield from every_token_page("/v2/templates", Template, query, page_limit))


def get_template(template_id: str, limit: int = MAX_PAGE_LIMIT) -> Exchange[TemplateWithBuilds]:
    """A template and its builds: the first page, at most `limit` builds (1..100)."""
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_PAGE_LIMIT}, got {limit}")
    call = Call(
        "GET", "/templates/{templateID}", {"templateID": template_id}, [("limit", str(limit))]
    )
    reply = yield from send(call)
    return decode(reply, TemplateWithBuilds)


def template_tags(template_id: str) -> Exchange[list[TemplateTag]]:
    """The template's tags, each with the build it names."""
    call = Call("GET", "/templates/{templateID}/tags", {"templateID": template_id})
    reply = yield from send(call)
    return decode(reply, list[TemplateTag])


def template_by_alias(alias: str) -> Exchange[TemplateAliasResponse | None]:
    """The template that has name (alias) `alias`; None when none has (404).

    `POST /v3/templates` with a name already taken starts a new build of that template
    rather than refusing, so a caller that means to create a new one asks this first."""
    call = Call("GET", "/templates/aliases/{alias}", {"alias": alias})
    try:
        reply = yield from send(call)
    except NotFoundError:
        return None
    return decode(reply, TemplateAliasResponse)


def create_template(request: TemplateBuildRequestV3) -> Exchange[TemplateRequestResponseV3]:
    """Create a template and its first build (then upload files and start the build)."""
    call = Call("POST", "/v3/templates", json=request.to_wire(), retry_safe=False)
    reply = yield from send(call)
    return decode(reply, TemplateRequestResponseV3)


def template_files_upload(template_id: str, files_hash: str) -> Exchange[TemplateBuildFileUpload]:
    """Where to upload the tar of a build step's files, unless already cached."""
    path_params = {"templateID": template_id, "hash": files_hash}
    reply = yield from send(Call("GET", "/templates/{templateID}/files/{hash}", path_params))
    return decode(reply, TemplateBuildFileUpload)


def start_template_build(
    template_id: str, build_id: str, build: TemplateBuildStartV2
) -> Exchange[None]:
    """Start a build created by `create_template`. Not repeated after an unknown outcome."""
    call = Call(
        "POST",
        "/v2/templates/{templateID}/builds/{buildID}",
        {"templateID": template_id, "buildID": build_id},
        json=build.to_wire(),
        retry_safe=False,
    )
    yield from send(call)


def template_build_status(
    template_id: str,
    build_id: str,
    logs_offset: int = 0,
    limit: int | None = None,
    level: LogLevel | None = None,
) -> Exchange[TemplateBuildInfo]:
    """A build's status and its log lines from index `logs_offset` on (at most 100)."""
    if logs_offset < 0:
        raise ValueError(f"logs_offset must be 0 or more, got {logs_offset}")
    query = [("logsOffset", str(logs_offset))]
    if limit is not None:
        if not 0 <= limit <= BUILD_LOGS_MAX_LIMIT:
            raise ValueError(f"limit must be 0..{BUILD_LOGS_MAX_LIMIT}, got {limit}")
        query.append(("limit", str(limit)))
    if level is not None:
        query.append(("level", level))
    call = Call(
        "GET",
        "/templates/{templateID}/builds/{buildID}/status",
        {"templateID": template_id, "buildID": build_id},
        query,
    )
    reply = yield from send(call)
    return decode(reply, TemplateBuildInfo)


def update_template(template_id: str, public: bool) -> Exchange[TemplateUpdateResponse]:
    """Make a template public or private to the team."""
    body = TemplateUpdateRequest(public=public).to_wire()
    call = Call("PATCH", "/v2/templates/{templateID}", {"templateID": template_id}, json=body)
    reply = yield from send(call)
    return decode(reply, TemplateUpdateResponse)
