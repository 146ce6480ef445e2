"""Extending a sandbox's life without ever shortening it (docs/ARCHITECTURE.md, decision 4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from e2bapi.actions.sandboxes import connect_sandbox, get_sandbox
from e2bapi.exchange import Exchange
from e2bapi.models.base import ApiModel
from e2bapi.wire import utc_now

# Our clock and the API's differ a little; a shortfall under this is not a clamp.
CLOCK_SKEW_TOLERANCE_S = 5.0

ExtendOutcomeKind = Literal["extended", "already_later", "not_running", "capped"]


class ExtendOutcome(ApiModel):
    """What `extend_sandbox` did, with the end before and after (UTC)."""

    sandbox_id: str
    outcome: ExtendOutcomeKind
    previous_end_at: datetime
    end_at: datetime
    message: str


def extend_sandbox(
    sandbox_id: str, seconds: int, clock: Callable[[], datetime] = utc_now
) -> Exchange[ExtendOutcome]:
    """Make a running sandbox live at least `seconds` more from now; never shorten it.

    Reads the sandbox first: a paused one is left alone (connecting would resume it) and
    one that already ends later is left as it is. Otherwise it extends through `connect`,
    which the API itself never lets shorten a life, so a concurrent extension is safe.
    The end reported is the one the API holds afterwards: the team's maximum sandbox
    length may clamp it.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be more than 0, got {seconds}")
    before = yield from get_sandbox(sandbox_id)
    wanted_end = clock() + timedelta(seconds=seconds)

    def outcome(kind: ExtendOutcomeKind, end_at: datetime, message: str) -> ExtendOutcome:
        return ExtendOutcome(
            sandbox_id=sandbox_id,
            outcome=kind,
            previous_end_at=before.end_at,
            end_at=end_at,
            message=message,
        )

    if before.state != "running":
        message = f"not extended: the sandbox is {before.state}; resume it first"
        return outcome("not_running", before.end_at, message)
    if before.end_at >= wanted_end:
        message = f"not changed: it already ends at {before.end_at.isoformat()}"
        return outcome("already_later", before.end_at, message)
    yield from connect_sandbox(sandbox_id, seconds)
    after = yield from get_sandbox(sandbox_id)
    if after.end_at <= before.end_at:
        message = (
            f"not extended: the API kept the end at {after.end_at.isoformat()} "
            "(the team's maximum sandbox length allows no more)"
        )
        return outcome("capped", after.end_at, message)
    message = f"extended from {before.end_at.isoformat()} to {after.end_at.isoformat()}"
    if (wanted_end - after.end_at).total_seconds() > CLOCK_SKEW_TOLERANCE_S:
        message += " (clamped by the team's maximum sandbox length)"
    return outcome("extended", after.end_at, message)
