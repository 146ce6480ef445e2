"""Signed `/files` links: checking them, and finding the box a link was signed for.

The SDK's `download_url()`/`upload_url()` of a secured box sign the path, the operation, the
user and (optionally) an expiry with the box's envd access token (e2b/sandbox/signature.py):
"v1_" + unpadded standard base64 of sha256("path:operation:user:token[:expiration]"). With
`E2B_SANDBOX_URL` set the link names no sandbox (no `E2b-Sandbox-Id`, no `<port>-<id>` host),
so sandboxd finds the box whose token makes that signature; only the holder of a box's token
can make one, so a link opens its own box and no other. Answers as envd's (docs/E2B-API.md,
"Signed file links"): a signature that matches no box is 401 "invalid signature", a valid
one past its expiry 401 "signature is already expired".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from sandboxd.envd.files_api import api_error
from sandboxd.envd.target import EnvdTarget, Resolver, find_target, proxy_error, sandbox_id_of

Operation = Literal["read", "write"]
# Every live box with its ID: what a link that names no box is checked against.
TargetLister = Callable[[], Iterable[tuple[str, EnvdTarget]]]

SIGNATURE_PREFIX = "v1_"
INVALID = "invalid signature"
EXPIRED = "signature is already expired"
MISSING = "missing signature query parameter"


def signature_for(
    path: str, operation: Operation, user: str, token: str, expiration: str | None
) -> str:
    """The v1 signature the SDK makes for these fields (`user` "" for the default user)."""
    fields = [path, operation, user, token] + ([expiration] if expiration is not None else [])
    digest = hashlib.sha256(":".join(fields).encode()).digest()
    return SIGNATURE_PREFIX + base64.b64encode(digest).rstrip(b"=").decode()


def _expiration_of(params: Mapping[str, str]) -> str | None:
    raw = params.get("signature_expiration")
    return raw if raw else None


def signed_by(params: Mapping[str, str], operation: Operation, token: str | None) -> bool:
    """Whether the link's signature was made with `token` (its expiry not yet checked)."""
    given = params.get("signature", "")
    if token is None or not given:
        return False
    expected = signature_for(
        params.get("path", ""),
        operation,
        params.get("username", ""),
        token,
        _expiration_of(params),
    )
    return hmac.compare_digest(given.encode(), expected.encode())


def refusal(
    params: Mapping[str, str], operation: Operation, token: str | None, now_s: float | None = None
) -> str | None:
    """Why the link may not reach the box with `token`, in envd's words; None if it may.
    As envd does, the signature is checked before the expiry, so an expired link that was
    tampered with is "invalid", and only a genuine one says it expired."""
    if not params.get("signature"):
        return MISSING
    expiration = _expiration_of(params)
    if expiration is not None and not expiration.isdigit():
        return INVALID
    if not signed_by(params, operation, token):
        return INVALID
    if expiration is not None and int(expiration) < (time.time() if now_s is None else now_s):
        return EXPIRED
    return None


def files_refusal(
    header_token: str | None,
    params: Mapping[str, str],
    operation: Operation,
    token: str | None,
    now_s: float | None = None,
) -> str | None:
    """Why a `/files` request may not reach the box with `token`, None if it may. As in
    envd, a token header decides alone (a wrong one is refused even with a valid signature);
    without one the link's signature must hold."""
    if token is None:
        return INVALID  # a box without a token lets nothing in (fails closed)
    if header_token:
        if hmac.compare_digest(header_token.encode(), token.encode()):
            return None
        return "access token present in header but does not match"
    return refusal(params, operation, token, now_s)


def files_target(
    request: Request,
    params: Mapping[str, str],
    operation: Operation,
    resolve: Resolver,
    targets: TargetLister | None,
) -> tuple[str, EnvdTarget] | Response:
    """The box (ID and target) a `/files` request is for: the one it names, else, for a
    signed link that names none, the one whose token signed it; or the error answer."""
    sandbox_id = sandbox_id_of(request)
    if sandbox_id is None and targets is not None and params.get("signature"):
        return find_signed_target(params, operation, targets)
    target = find_target(request, resolve)
    return target if isinstance(target, Response) else (sandbox_id or "", target)


def find_signed_target(
    params: Mapping[str, str],
    operation: Operation,
    targets: TargetLister,
    now_s: float | None = None,
) -> tuple[str, EnvdTarget] | Response:
    """The box (ID and target) whose token signed the link, or envd's (or the proxy's) answer.
    Every box is compared (in constant time each), so how long it takes says nothing about
    which token came close."""
    found: tuple[str, EnvdTarget] | None = None
    for sandbox_id, target in targets():
        if signed_by(params, operation, target.access_token) and found is None:
            found = (sandbox_id, target)
    if found is None:
        return api_error(401, MISSING if not params.get("signature") else INVALID)
    sandbox_id, target = found
    if target.state != "running":
        text = "The sandbox was not found running: it is paused (resume it with connect)"
        return proxy_error(sandbox_id, text)
    reason = refusal(params, operation, target.access_token, now_s)
    return found if reason is None else api_error(401, reason)
