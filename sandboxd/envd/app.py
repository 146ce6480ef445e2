"""The envd server: one Starlette app in front of every sandbox's agent.

Routes: `GET /health` (204), `GET|POST /files`, and Connect RPCs at
`POST /<package.Service>/<Method>` for process.Process and filesystem.Filesystem.
Each request is routed by `E2b-Sandbox-Id` (see target.py), checked for the
sandbox's access token and for a known user, counted against the sandbox's limits on
requests in flight (see inflight.py), then served by the sandbox's agent acting as that
user ("root": box root, as on E2B; refused where the box has no root).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxd.agent import AgentClient, AgentError
from sandboxd.envd import connect, files_api, filesystem_service, process_service
from sandboxd.envd.connect import ConnectError
from sandboxd.envd.inflight import HeldResponse, InFlightLimits, Slot, kind_of
from sandboxd.envd.protojson import KEEPALIVE_EVENT
from sandboxd.envd.signed_links import Operation, TargetLister, files_refusal, files_target
from sandboxd.envd.target import (
    Resolver,
    find_target,
    sandbox_id_of,
    token_ok,
    user_of,
)

_UNARY = {
    "process.Process": process_service.UNARY,
    "filesystem.Filesystem": filesystem_service.UNARY,
}
_SERVER_STREAMS = {  # each service's streams, and the keepalive message its streams send
    "process.Process": (process_service.SERVER_STREAMS, KEEPALIVE_EVENT),
    "filesystem.Filesystem": (filesystem_service.SERVER_STREAMS, filesystem_service.KEEPALIVE),
}


def create_envd_app(
    resolve: Resolver, limits: InFlightLimits | None = None, targets: TargetLister | None = None
) -> Starlette:
    """The envd app; `resolve(sandbox_id)` gives the sandbox's target, None if unknown.
    `limits` caps each sandbox's requests in flight (inflight.py's defaults if None).
    `targets` lists every box, for signed /files links that name none (signed_links.py)."""
    in_flight = limits or InFlightLimits()

    async def health(request: Request) -> Response:
        target = find_target(request, resolve)
        return target if isinstance(target, Response) else Response(status_code=204)

    async def files(request: Request) -> Response:
        operation: Operation = "read" if request.method == "GET" else "write"
        params = dict(request.query_params)
        routed = files_target(request, params, operation, resolve, targets)
        if isinstance(routed, Response):
            return routed
        sandbox_id, target = routed
        header_token = request.headers.get("x-access-token")
        if reason := files_refusal(header_token, params, operation, target.access_token):
            return files_api.api_error(401, reason)
        try:
            agent = target.agent.as_user(user_of(request, params.get("username")))
        except LookupError as exc:
            return files_api.api_error(401, str(exc))
        slot = in_flight.take(sandbox_id, "call")
        if slot is None:
            return files_api.api_error(429, in_flight.refusal("call"))
        if request.method == "GET":
            return await _held(slot, files_api.download(request, agent))
        return await _held(slot, files_api.upload(request, agent))

    async def rpc(request: Request) -> Response:
        target = find_target(request, resolve)
        if isinstance(target, Response):
            return target
        service, method = request.path_params["service"], request.path_params["method"]
        if not token_ok(request, target):
            error = ConnectError("unauthenticated", "invalid or missing access token")
            return connect.error_response(error)
        try:
            agent = target.agent.as_user(user_of(request))
        except LookupError as exc:
            return connect.error_response(ConnectError("unauthenticated", str(exc)))
        kind = kind_of(service, method)
        slot = in_flight.take(sandbox_id_of(request) or "", kind)
        if slot is None:
            error = ConnectError("resource_exhausted", in_flight.refusal(kind))
            return connect.error_response(error)
        return await _held(slot, _answer(request, agent, service, method))

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/files", files, methods=["GET", "POST"]),
        Route("/{service}/{method}", rpc, methods=["POST"]),
    ]
    return Starlette(routes=routes)


async def _held(slot: Slot, answer: Awaitable[Response]) -> Response:
    """`answer`, holding `slot` until it has been sent (released at once if it fails)."""
    try:
        response = await answer
    except BaseException:
        slot.release()
        raise
    return HeldResponse(response, slot)


async def _answer(request: Request, agent: AgentClient, service: str, method: str) -> Response:
    """The RPC's answer, its failures as Connect errors."""
    try:
        return await _serve(request, agent, service, method)
    except AgentError as exc:
        return connect.error_response(ConnectError.from_agent(exc))
    except ConnectError as exc:
        return connect.error_response(exc)


async def _serve(request: Request, agent: AgentClient, service: str, method: str) -> Response:
    """Dispatch one RPC by kind: unary, server stream or client stream; `agent` acts as
    the request's user."""
    server_streams, keepalive = _SERVER_STREAMS.get(service, ({}, KEEPALIVE_EVENT))
    if method in server_streams:
        handler = server_streams[method]
        deadline_s = connect.deadline_from(request.headers)
        try:
            messages = await handler(agent, await connect.first_stream_message(request), deadline_s)
        except AgentError as exc:  # a stream's errors travel in its end, under HTTP 200
            return connect.error_stream(ConnectError.from_agent(exc))
        except ConnectError as exc:
            return connect.error_stream(exc)
        keepalive_s = connect.keepalive_from(request.headers)
        return connect.stream_response(
            messages, keepalive_s=keepalive_s, keepalive=keepalive, deadline_s=deadline_s
        )
    if service == "process.Process" and method in process_service.CLIENT_STREAMS:
        handler_cs = process_service.CLIENT_STREAMS[method]
        try:
            reply = await handler_cs(agent, connect.stream_messages(request))
        except AgentError as exc:
            return connect.error_stream(ConnectError.from_agent(exc))
        except ConnectError as exc:
            return connect.error_stream(exc)
        return connect.stream_response(_single(reply))
    if service == "filesystem.Filesystem" and method in filesystem_service.ENCODED:
        encoded = filesystem_service.ENCODED[method]
        return await encoded(agent, await connect.unary_request(request))
    unary = _UNARY.get(service, {}).get(method)
    if unary is None:
        raise ConnectError("unimplemented", f"{service}/{method} is not implemented")
    return connect.unary_response(await unary(agent, await connect.unary_request(request)))


async def _single(message: connect.Message) -> AsyncIterator[connect.Message]:
    yield message
