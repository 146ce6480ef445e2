"""Listing sandboxes: the filters, order and paging of `GET /sandboxes` and `GET /v2/sandboxes`.

What each query parameter means is in docs/E2B-API.md ("Listing and paging"); a value
the spec does not allow is a 400 naming the parameter, never a filter quietly ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, unquote

from starlette.datastructures import QueryParams

from sandboxd.problems import ApiProblem
from sandboxd.records import SandboxRecord

STATES = ("running", "paused")
ORDERS = ("asc", "desc")
# The spec's paginationLimit: 1..100, 100 when left out.
PAGE_LIMIT_MAX = 100
# A token is two short strings in JSON and base64; anything much longer was not made here, and
# decoding it would only cost memory.
TOKEN_MAX_CHARS = 512

SortKey = tuple[str, str]


@dataclass(frozen=True)
class SandboxFilter:
    """Which sandboxes a list asks for, and in which order (by start time, then ID)."""

    states: tuple[str, ...] = STATES
    metadata: dict[str, str] = field(default_factory=dict)
    template: str | None = None
    started_after: datetime | None = None
    newest_first: bool = True

    def matches(self, record: SandboxRecord) -> bool:
        """Whether `record` passes every filter."""
        return (
            record.state in self.states
            and all(record.metadata.get(key) == value for key, value in self.metadata.items())
            and (self.template is None or self.template in (record.template_id, record.alias))
            and (self.started_after is None or record.started_at >= self.started_after)
        )

    def select(self, records: Iterable[SandboxRecord]) -> list[SandboxRecord]:
        """The records that match, in the asked order."""
        chosen = [record for record in records if self.matches(record)]
        return sorted(chosen, key=sort_key, reverse=self.newest_first)


def sort_key(record: SandboxRecord) -> SortKey:
    # ISO strings of UTC times sort as the times do; the ID breaks ties between equal starts.
    return record.started_at.isoformat(), record.sandbox_id


def v1_filter(query: QueryParams) -> SandboxFilter:
    """The deprecated list's only parameter, `metadata`; it lists running sandboxes."""
    return SandboxFilter(states=("running",), metadata=metadata_of(query))


def v2_filter(query: QueryParams) -> SandboxFilter:
    """`state`, `metadata`, `template`, `startedAfter` and `order`, each checked."""
    order = query.get("order") or "desc"
    if order not in ORDERS:
        raise ApiProblem(400, f"query parameter 'order' must be asc or desc, got {order!r}")
    return SandboxFilter(
        states=states_of(query.get("state")),
        metadata=metadata_of(query),
        template=query.get("template") or None,
        started_after=started_after_of(query.get("startedAfter")),
        newest_first=order == "desc",
    )


def states_of(raw: str | None) -> tuple[str, ...]:
    """The comma-separated `state` list; every state when left out."""
    if not raw:
        return STATES
    states = tuple(part for part in raw.split(",") if part)
    unknown = [state for state in states if state not in STATES]
    if unknown:
        raise ApiProblem(400, f"unknown state {unknown[0]!r}: use running or paused")
    return states


def metadata_of(query: QueryParams) -> dict[str, str]:
    """`metadata`: a query string (`k=v&k2=v2`) whose keys and values are URL-encoded once
    more, as the SDK sends them (docs/E2B-API.md), so `&` and `=` may appear in them."""
    pairs = parse_qsl(query.get("metadata", ""), keep_blank_values=True)
    return {unquote(key): unquote(value) for key, value in pairs}


def started_after_of(raw: str | None) -> datetime | None:
    """`startedAfter`, an RFC 3339 time with its offset; None when left out."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiProblem(
            400,
            f"query parameter 'startedAfter' must be an RFC 3339 date-time with a time zone, "
            f"such as 2024-01-31T12:00:00Z, got {raw!r}",
        )
    return moment


@dataclass(frozen=True)
class Page:
    """One page of a list, and the token of the next (None on the last page)."""

    records: list[SandboxRecord]
    next_token: str | None


def page_of(
    ordered: list[SandboxRecord], token: str | None, limit: int, *, newest_first: bool
) -> Page:
    """The `limit` records after the one `token` names, in the list's order."""
    after = decode_token(token)
    if after is not None:
        ordered = [
            record
            for record in ordered
            if (sort_key(record) < after if newest_first else sort_key(record) > after)
        ]
    records, rest = ordered[:limit], ordered[limit:]
    return Page(records, encode_token(sort_key(records[-1])) if rest else None)


def encode_token(key: SortKey) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_token(token: str | None) -> SortKey | None:
    """The position a `nextToken` names; a 400 for a token this server did not make."""
    if not token:
        return None
    try:
        if len(token) > TOKEN_MAX_CHARS:
            raise ValueError("too long")
        started_at, sandbox_id = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise ApiProblem(400, "nextToken is not a token this server gave") from None
    return str(started_at), str(sandbox_id)
