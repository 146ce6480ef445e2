"""Learning the team ID, which no endpoint maps from an API key (docs/E2B-API.md, "The team ID")."""

from __future__ import annotations

from e2bapi.decoding import decode
from e2bapi.errors import MissingSettingError
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.events import SandboxEvent

TEAM_ID_SETTING = "E2B_TEAM_ID"


def discover_team_id() -> Exchange[str]:
    """The team ID named by the newest lifecycle event's `sandboxTeamId`."""
    call = Call("GET", "/events/sandboxes", query=[("limit", "1"), ("orderAsc", "false")])
    reply = yield from send(call)
    events = decode(reply, list[SandboxEvent])
    if not events:
        raise MissingSettingError(
            TEAM_ID_SETTING,
            "team calls need the team ID, and no lifecycle event names it yet; "
            "set it to the ID shown in the E2B dashboard's team settings",
        )
    return events[0].sandbox_team_id
