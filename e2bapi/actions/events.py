"""Lifecycle event actions: one sandbox's events and the whole team's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from e2bapi.exchange import Exchange
from e2bapi.models.events import SandboxEvent
from e2bapi.paging import MAX_PAGE_LIMIT, every_event_page


def sandbox_events(
    sandbox_id: str,
    types: Sequence[str] = (),
    order_asc: bool = False,
    since: datetime | None = None,
    page_limit: int = MAX_PAGE_LIMIT,
) -> Exchange[list[SandboxEvent]]:
    """Every lifecycle event of one sandbox (newest first unless `order_asc`)."""
    return (
        yield from every_event_page(
            "/events/sandboxes/{sandboxID}",
            {"sandboxID": sandbox_id},
            types,
            order_asc,
            since,
            page_limit,
        )
    )


def team_events(
    types: Sequence[str] = (),
    order_asc: bool = False,
    since: datetime | None = None,
    page_limit: int = MAX_PAGE_LIMIT,
) -> Exchange[list[SandboxEvent]]:
    """Every lifecycle event of the key's team, across every page (since `since`, if given)."""
    return (
        yield from every_event_page("/events/sandboxes", {}, types, order_asc, since, page_limit)
    )
