"""The one place a `Call` becomes an httpx request and an httpx response becomes a `Reply`."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from e2bapi.decoding import error_for
from e2bapi.errors import TransportError
from e2bapi.exchange import Call, Reply

# Failures where httpx never handed the request to the network: nothing can have happened.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def build_request(
    http: httpx.Client | httpx.AsyncClient, call: Call, timeout_s: float
) -> httpx.Request:
    """The request for `call`, with its own timeout whatever the injected client's default."""
    return http.build_request(
        call.method,
        call.path,
        params=list(call.query),
        json=call.json,
        timeout=timeout_s,
    )


def to_reply(call: Call, response: httpx.Response, now: datetime) -> Reply:
    """The reply for a 2xx response; any other status is raised as its `APIError`."""
    if not response.is_success:
        raise error_for(call, response.status_code, response.headers, response.content, now)
    return Reply(call, response.status_code, response.headers, response.content)


def to_transport_error(call: Call, failure: httpx.HTTPError) -> TransportError:
    """Our error for an httpx failure (lost connection, timeout, undecodable body, redirect
    loop), with a reason that never quotes headers."""
    reason = type(failure).__name__
    if str(failure):
        reason = f"{reason}: {failure}"
    return TransportError(call.endpoint, reason, request_sent=not isinstance(failure, _NOT_SENT))
