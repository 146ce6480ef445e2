"""Sandbox actions: create, describe, list, pause, resume, kill and change their lifetime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from e2bapi.decoding import decode
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.sandboxes import (
    ConnectResult,
    ListedSandbox,
    NewSandbox,
    Sandbox,
    SandboxDetail,
    SandboxState,
)
from e2bapi.paging import MAX_PAGE_LIMIT, every_token_page

_SANDBOX = "/sandboxes/{sandboxID}"

# E2B refreshes by at most an hour at a time (docs/E2B-API.md, "A sandbox's lifetime").
REFRESH_MIN_S = 15
REFRESH_MAX_S = 3600


def create_sandbox(new_sandbox: NewSandbox) -> Exchange[Sandbox]:
    """Create a sandbox from a template. Never repeated after an unknown outcome."""
    call = Call("POST", "/sandboxes", json=new_sandbox.to_wire(), retry_safe=False)
    reply = yield from send(call)
    return decode(reply, Sandbox)


def get_sandbox(sandbox_id: str) -> Exchange[SandboxDetail]:
    """One sandbox's details: state, limits, start and end."""
    reply = yield from send(Call("GET", _SANDBOX, {"sandboxID": sandbox_id}))
    return decode(reply, SandboxDetail)


def list_sandboxes(
    states: Sequence[SandboxState] = (),
    metadata: Mapping[str, str] | None = None,
    page_limit: int = MAX_PAGE_LIMIT,
) -> Exchange[list[ListedSandbox]]:
    """Every sandbox in the given states (the API's default: all), across every page.

    `metadata` keeps only sandboxes whose metadata has all of these key-value pairs.
    """
    query: list[tuple[str, str]] = []
    if states:
        query.append(("state", ",".join(states)))
    if metadata:
        query.append(("metadata", urlencode(dict(metadata))))
    return (yield from every_token_page("/v2/sandboxes", ListedSandbox, query, page_limit))


def kill_sandbox(sandbox_id: str) -> Exchange[None]:
    """Kill a sandbox in any state."""
    yield from send(Call("DELETE", _SANDBOX, {"sandboxID": sandbox_id}))


def pause_sandbox(sandbox_id: str) -> Exchange[None]:
    """Pause a running sandbox, keeping its memory; `ConflictError` if it is not running."""
    yield from send(Call("POST", _SANDBOX + "/pause", {"sandboxID": sandbox_id}))


def connect_sandbox(sandbox_id: str, timeout_s: int) -> Exchange[ConnectResult]:
    """Resume a paused sandbox or reach a running one; its life is extended, never shortened."""
    _check_non_negative("timeout_s", timeout_s)
    call = Call(
        "POST", _SANDBOX + "/connect", {"sandboxID": sandbox_id}, json={"timeout": timeout_s}
    )
    reply = yield from send(call)
    return ConnectResult(sandbox=decode(reply, Sandbox), resumed=reply.status_code == 201)


def set_sandbox_timeout(sandbox_id: str, timeout_s: int) -> Exchange[None]:
    """End the sandbox `timeout_s` seconds from now; this can shorten its life."""
    _check_non_negative("timeout_s", timeout_s)
    call = Call(
        "POST", _SANDBOX + "/timeout", {"sandboxID": sandbox_id}, json={"timeout": timeout_s}
    )
    yield from send(call)


def refresh_sandbox(sandbox_id: str, duration_s: int | None = None) -> Exchange[None]:
    """Keep a sandbox alive `duration_s` (15-3600) longer; the API's default when None."""
    body: dict[str, object] = {}  # E2B refuses an empty body: send {} at least.
    if duration_s is not None:
        if not REFRESH_MIN_S <= duration_s <= REFRESH_MAX_S:
            raise ValueError(
                f"duration_s must be {REFRESH_MIN_S}..{REFRESH_MAX_S} seconds, got {duration_s}"
            )
        body["duration"] = duration_s
    yield from send(Call("POST", _SANDBOX + "/refreshes", {"sandboxID": sandbox_id}, json=body))


def _check_non_negative(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be 0 or more seconds, got {value}")
