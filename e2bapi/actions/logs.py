"""Log actions: a sandbox's log lines."""

from __future__ import annotations

from datetime import datetime

from e2bapi.decoding import decode
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.logs import LogLevel, LogsDirection, SandboxLogEntry, SandboxLogsV2Response

LOGS_MAX_LIMIT = 1000
LOGS_SEARCH_MAX_CHARS = 256


def sandbox_logs(
    sandbox_id: str,
    cursor: datetime | None = None,
    limit: int | None = None,
    direction: LogsDirection | None = None,
    level: LogLevel | None = None,
    search: str | None = None,
) -> Exchange[list[SandboxLogEntry]]:
    """Up to `limit` (at most 1000) log lines from `cursor` on, in `direction`.

    `level` is the lowest level kept; `search` a case-sensitive substring of the message.
    """
    query: list[tuple[str, str]] = []
    if cursor is not None:
        if cursor.tzinfo is None:
            raise ValueError(f"cursor must carry a time zone, got {cursor.isoformat()}")
        query.append(("cursor", str(int(cursor.timestamp() * 1000))))
    if limit is not None:
        if not 0 <= limit <= LOGS_MAX_LIMIT:
            raise ValueError(f"limit must be 0..{LOGS_MAX_LIMIT}, got {limit}")
        query.append(("limit", str(limit)))
    if direction is not None:
        query.append(("direction", direction))
    if level is not None:
        query.append(("level", level))
    if search is not None:
        if len(search) > LOGS_SEARCH_MAX_CHARS:
            raise ValueError(f"search must be at most {LOGS_SEARCH_MAX_CHARS} characters")
        query.append(("search", search))
    call = Call("GET", "/v2/sandboxes/{sandboxID}/logs", {"sandboxID": sandbox_id}, query)
    reply = yield from send(call)
    return decode(reply, SandboxLogsV2Response).logs
