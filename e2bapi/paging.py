"""The two ways E2B pages a list: an `X-Next-Token` header, or `offset`/`limit` (events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from e2bapi.decoding import decode
from e2bapi.errors import BadPayloadError
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.events import SandboxEvent

T = TypeVar("T")

MAX_PAGE_LIMIT = 100


def every_token_page(
    path_template: str,
    item_type: type[T],
    query: Sequence[tuple[str, str]] = (),
    page_limit: int = MAX_PAGE_LIMIT,
) -> Exchange[list[T]]:
    """Every item of a list, following `X-Next-Token` until a page comes without one."""
    _check_page_limit(page_limit)
    items: list[T] = []
    token: str | None = None
    seen_tokens: set[str] = set()
    while True:
        page_query = [*query, ("limit", str(page_limit))]
        if token is not None:
            page_query.append(("nextToken", token))
        reply = yield from send(Call("GET", path_template, query=page_query))
        items.extend(decode(reply, list[item_type]))  # type: ignore[valid-type]
        next_token = reply.headers.get("x-next-token") or None
        if next_token is None:
            return items
        if next_token in seen_tokens:
            # A token seen before would page in a circle forever.
            raise BadPayloadError(reply.call.endpoint, "X-Next-Token", "a token it sent before")
        seen_tokens.add(next_token)
        token = next_token


def every_event_page(
    path_template: str,
    path_params: dict[str, str],
    types: Sequence[str],
    order_asc: bool,
    since: datetime | None,
    page_limit: int = MAX_PAGE_LIMIT,
) -> Exchange[list[SandboxEvent]]:
    """Every lifecycle event, paging by offset; newest first unless `order_asc`.

    With `since` (timezone-aware), only events at or after it are kept, and paging newest
    first stops at the first page that reaches back past it. Events that shift between
    pages while new ones arrive are kept once, by ID.
    """
    _check_page_limit(page_limit)
    if since is not None and since.tzinfo is None:
        raise ValueError(f"since must carry a time zone, got {since.isoformat()}")
    events: list[SandboxEvent] = []
    seen_ids: set[str] = set()
    offset = 0
    while True:
        query = [
            ("offset", str(offset)),
            ("limit", str(page_limit)),
            ("orderAsc", "true" if order_asc else "false"),
            *(("types", event_type) for event_type in types),
        ]
        reply = yield from send(Call("GET", path_template, path_params, query))
        page = decode(reply, list[SandboxEvent])
        for event in page:
            if event.id not in seen_ids and (since is None or event.timestamp >= since):
                seen_ids.add(event.id)
                events.append(event)
        reached_since = since is not None and not order_asc and page and page[-1].timestamp < since
        if len(page) < page_limit or reached_since:
            return events
        offset += len(page)


def _check_page_limit(page_limit: int) -> None:
    if not 1 <= page_limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"page_limit must be 1..{MAX_PAGE_LIMIT}, got {page_limit}")
