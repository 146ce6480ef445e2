"""The API health check."""

from __future__ import annotations

from e2bapi.errors import ServerError
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.health import Health


def check_health() -> Exchange[Health]:
    """Whether the API is up: any 2xx is healthy (E2B answers 200 text, the spec says 204).

    A 5xx is reported as unhealthy rather than raised, and not retried: a health check
    should say what it sees now.
    """
    try:
        reply = yield from send(Call("GET", "/health", retry_safe=False))
    except ServerError as down:
        return Health(healthy=False, status_code=down.status_code, detail=down.message)
    detail = reply.content.decode("utf-8", errors="replace").strip() or "(no body)"
    return Health(healthy=True, status_code=reply.status_code, detail=detail)
