"""The control-plane app: routes, the API key check and E2B-shaped errors."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sandboxd.api import history, metrics, network, sandboxes, template_builds, templates
from sandboxd.auth import key_matches
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem
from sandboxd.templates.service import TemplateService

log = logging.getLogger(__name__)


def problem(status: int, message: str) -> JSONResponse:
    """E2B's error body. The message may quote the request: escape what UTF-8 cannot hold."""
    printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"code": status, "message": printable}, status_code=status)


async def health(request: Request) -> Response:
    manager: SandboxManager = request.app.state.manager
    return PlainTextResponse(f"Health check successful; isolation: {manager.isolation_note}")


class RequireApiKey(BaseHTTPMiddleware):
    """Every route but /health needs the X-API-Key header to match the key."""

    def __init__(self, app: object, api_key: str) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._api_key = api_key

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        # An upload link is signed by sandboxd instead (sandboxd/templates/files.py): the SDK
        # PUTs to it without the key, as to E2B's storage.
        if not _keyless(request) and not key_matches(
            self._api_key, request.headers.get("x-api-key")
        ):
            return problem(401, "Invalid API key, the X-API-Key header must hold sandboxd's key")
        return await call_next(request)


def _keyless(request: Request) -> bool:
    path = request.url.path
    return path == "/health" or (request.method == "PUT" and template_builds.is_upload_path(path))


async def _on_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiProblem)
    return problem(error.status, error.message)


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return problem(error.status_code, str(error.detail))


async def _on_unexpected(request: Request, error: Exception) -> Response:
    # A request boundary: log the whole story, answer E2B's 500 shape.
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return problem(500, f"internal error: {type(error).__name__}")


def create_api_app(
    manager: SandboxManager, api_key: str, template_service: TemplateService
) -> Starlette:
    """The API app for `manager` and `template_service`, guarded by `api_key`."""
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            *metrics.ROUTES,  # before /sandboxes/{id}: /sandboxes/metrics is not a sandbox
            *history.ROUTES,
            *sandboxes.ROUTES,
            *network.ROUTES,
            *templates.ROUTES,
            *template_builds.ROUTES,
        ],
        middleware=[Middleware(RequireApiKey, api_key=api_key)],
        exception_handlers={
            ApiProblem: _on_problem,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
    )
    app.state.manager = manager
    app.state.templates = template_service
    return app
