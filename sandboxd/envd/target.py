"""Which sandbox a request is for, and whether it may reach it.

This is the part E2B's edge proxy plays in front of envd: the SDK (with
E2B_SANDBOX_URL set) sends every envd call to one URL with `E2b-Sandbox-Id` and
`E2b-Sandbox-Port: 49983`, plus `X-Access-Token`. Every sandbox has a token, also one
made with `secure: false` (the create answer carries it, so the SDK sends it): on a host
with other users, "no token" would mean "any local user may run code in the box".

Unknown and paused sandboxes get the proxy's answer: HTTP 502 with
`{"sandboxId", "message", "code": 502}`. The SDK reads a 502 whose message contains
"was not found" as SandboxNotRunningException (e2b/exceptions.py
format_sandbox_unavailable_exception; e2b/envd/client_shared.py plain_http_error maps
it to Connect `unavailable` for RPCs, e2b/envd/api.py _health_status to "not running").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxd.agent import AgentClient

ENVD_PORT = 49983
# A box's accounts, as in E2B: the sandbox user (uid 1000), and "root", box root (uid 0 of
# the box's own user namespace; refused by the agent where the box has none: reduced
# isolation).
KNOWN_USERS = ("user", "root")


class EnvdTarget(Protocol):
    """One sandbox as the envd server sees it (the manager's record can be one)."""

    @property
    def agent(self) -> AgentClient: ...

    @property
    def access_token(self) -> str | None:
        """Every call but /health must carry it as X-Access-Token; None lets no call in."""

    @property
    def state(self) -> Literal["running", "paused"]: ...


Resolver = Callable[[str], EnvdTarget | None]


def sandbox_id_of(request: Request) -> str | None:
    """From `E2b-Sandbox-Id`, else from a Host like `49983-<id>.<domain>`."""
    if sandbox_id := request.headers.get("e2b-sandbox-id"):
        return sandbox_id
    host = request.headers.get("host", "").split(".", 1)[0]
    port, _, sandbox_id = host.partition("-")
    return sandbox_id if port == str(ENVD_PORT) and sandbox_id else None


def proxy_error(sandbox_id: str | None, message: str, status: int = 502) -> Response:
    body = {"sandboxId": sandbox_id or "", "message": message, "code": status}
    return JSONResponse(body, status_code=status)


def find_target(request: Request, resolve: Resolver) -> EnvdTarget | Response:
    """The running sandbox the request is for, or the proxy's error answer."""
    sandbox_id = sandbox_id_of(request)
    if sandbox_id is None:
        return proxy_error(None, "missing E2b-Sandbox-Id header", status=400)
    target = resolve(sandbox_id)
    if target is None:
        return proxy_error(sandbox_id, "The sandbox was not found")
    if target.state != "running":
        text = "The sandbox was not found running: it is paused (resume it with connect)"
        return proxy_error(sandbox_id, text)
    return target


def token_ok(request: Request, target: EnvdTarget) -> bool:
    """Whether the request carries the target's token; never without one (fails closed)."""
    expected = target.access_token
    given = request.headers.get("x-access-token", "")
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def signature_ok(
    params: Mapping[str, str], operation: str, target: EnvdTarget, now_s: float | None = None
) -> bool:
    """A signed /files URL (the SDK's download_url/upload_url, e2b/sandbox/signature.py):
    "v1_" + unpadded base64 of sha256("path:operation:user:token[:expiration]")."""
    token, signature = target.access_token, params.get("signature", "")
    if token is None or not signature:
        return False
    parts = [params.get("path", ""), operation, params.get("username", ""), token]
    if expiration := params.get("signature_expiration", ""):
        if not expiration.isdigit() or int(expiration) < (now_s or time.time()):
            return False
        parts.append(expiration)
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    expected = "v1_" + base64.b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(signature.encode(), expected.encode())


def user_of(request: Request, explicit: str | None = None) -> str:
    """The user named by `explicit`, else by `Authorization: Basic base64("<user>:")`,
    else the default "user". Raises LookupError for a user the box does not have."""
    user = explicit or ""
    header = request.headers.get("authorization", "")
    if not user and header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:].strip()).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise LookupError("malformed Authorization header") from None
    user = user or "user"
    if user not in KNOWN_USERS:
        raise LookupError(f"error looking up user '{user}': user: unknown user {user}")
    return user
