"""Pause, resume, extend and delete sandboxes through the E2B API, each attempt audited.

The dashboard's dialogs ask `ActionRunner.confirmation` what to say before acting and show
the `ActionResult` messages afterwards: every result and every API error is put in words
here, so pages never see an exception from the API.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from e2bapi import E2BClient
from e2bapi.actions import connect_sandbox, extend_sandbox, get_sandbox, kill_sandbox
from e2bapi.actions import pause_sandbox as pause_call
from e2bapi.actions.extend import CLOCK_SKEW_TOLERANCE_S
from e2bapi.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    E2BError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    TransportError,
)
from storage import MonitorStore

ActionName = Literal["pause", "resume", "extend", "delete"]
ACTION_NAMES: tuple[ActionName, ...] = get_args(ActionName)

# What a 409 means for each action, in words.
_CONFLICT_WORDS: dict[ActionName, str] = {
    "pause": "not running, cannot pause (409)",
    "resume": "cannot be resumed in its current state (409)",
    "extend": "not running, cannot extend (409)",
    "delete": "cannot be deleted in its current state (409)",
}


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ActionResult:
    """What one action did to one sandbox.

    `message` is in words ("paused", "already gone (404)", ...); `new_end_at` (UTC) is the
    end the API holds after an extend or a resume, when known.
    """

    sandbox_id: str
    ok: bool
    message: str
    new_end_at: datetime | None = None


def required_typed_confirmation(action: ActionName, count: int) -> str | None:
    """The text a user must type to confirm: the count for a bulk delete, else None."""
    if action == "delete" and count > 1:
        return str(count)
    return None


def duration_words(seconds: int) -> str:
    """`seconds` in words: "45 s", "10 min", "1 h 30 min", "2 h"."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min" if seconds % 60 == 0 else f"{minutes} min {seconds % 60} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def error_words(action: ActionName, error: E2BError) -> str:
    """An API error during `action`, in words, with its status code."""
    if isinstance(error, NotFoundError):
        return "already gone (404)"
    if isinstance(error, ConflictError):
        return _CONFLICT_WORDS[action]
    return api_error_words(error)


def api_error_words(error: E2BError, check: str = "the sandbox's state") -> str:
    """An API error in words, with its status code, whatever the action was (the words
    that depend on the action, for 404 and 409, are the caller's). `check`: what to look
    at when a request was sent but its answer lost."""
    if isinstance(error, RateLimitedError):
        if error.retry_after_s is None:
            return "rate limited by the API (429), try again shortly"
        return f"rate limited by the API (429), try again in {math.ceil(error.retry_after_s)} s"
    if isinstance(error, AuthenticationError):
        return "the API refused the API key (401)"
    if isinstance(error, ForbiddenError):
        return "the API key may not act on this sandbox's team (403)"
    if isinstance(error, ServiceUnavailableError):
        return "the API is unavailable (503), try again later"
    if isinstance(error, APIError):
        return f"the API answered {error.status_code}: {error.message}"
    if isinstance(error, TransportError):
        # A request that left may have been acted on before the answer was lost.
        unknown = f"; it may have acted: check {check}" if error.request_sent else ""
        return f"API unreachable: {error}{unknown}"
    return f"the API call failed: {error}"


class ActionRunner:
    """Runs dashboard actions on sandboxes through `client`, auditing each in `store`.

    `clock` gives timezone-aware UTC times for the audit and the extend rule.
    """

    def __init__(
        self,
        client: E2BClient,
        store: MonitorStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock

    @property
    def client(self) -> E2BClient:
        """The API client the actions go through; the template remedy and a template's
        builds use it too (read-only mode has no runner, so neither is offered)."""
        return self._client

    @property
    def store(self) -> MonitorStore:
        """The store the actions are audited in."""
        return self._store

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock of the audit."""
        return self._clock

    def confirmation(
        self,
        action: ActionName,
        sandbox_ids: Sequence[str],
        extend_by_s: int | None = None,
        resume_timeout_s: int = 300,
    ) -> str:
        """The dialog's text: what will happen to which sandboxes. ValueError on no ids, an
        unknown action or an extend without a positive `extend_by_s`."""
        _check_arguments(action, extend_by_s, resume_timeout_s)
        ids = _unique(sandbox_ids)
        if not ids:
            raise ValueError("no sandbox selected")
        count = len(ids)
        target = f"{count} sandbox{'es' if count > 1 else ''} ({', '.join(ids)})"
        subject = "it" if count == 1 else "each"
        if action == "pause":
            return (
                f"Pause {target}: {subject} stops running and keeps its memory and files "
                "until resumed."
            )
        if action == "resume":
            return (
                f"Resume {target}: if paused, {subject} runs again from where it stopped, for "
                f"{duration_words(resume_timeout_s)} from now; if running, it is left running "
                "and its end only ever moves later."
            )
        if action == "extend":
            by = duration_words(extend_by_s or 0)
            return (
                f"Extend {target} by {by}: {subject} then runs until at least {by} from now. "
                "Extending never shortens a life: a sandbox that already ends later is left as "
                "it is, and a paused one is not touched."
            )
        them_are = "it is" if count == 1 else "they are"
        return f"Delete {target}: {them_are} killed at once and cannot be brought back."

    def run(
        self,
        action: ActionName,
        sandbox_ids: Sequence[str],
        actor: str,
        extend_by_s: int | None = None,
        resume_timeout_s: int = 300,
    ) -> list[ActionResult]:
        """Do `action` to each sandbox in turn; one's failure does not stop the others.

        Every attempt is recorded in the audit table with `actor`, outcome "ok" or "failed"
        and the result's message. ValueError (before any call) on an unknown action or an
        extend without a positive `extend_by_s`.
        """
        _check_arguments(action, extend_by_s, resume_timeout_s)
        results: list[ActionResult] = []
        for sandbox_id in _unique(sandbox_ids):
            at = self._clock()
            try:
                result = self._act(action, sandbox_id, at, extend_by_s, resume_timeout_s)
            except E2BError as error:
                result = ActionResult(sandbox_id, ok=False, message=error_words(action, error))
            outcome = "ok" if result.ok else "failed"
            self._store.record_action(at, actor, action, [sandbox_id], outcome, result.message)
            results.append(result)
        return results

    def _act(
        self,
        action: ActionName,
        sandbox_id: str,
        at: datetime,
        extend_by_s: int | None,
        resume_timeout_s: int,
    ) -> ActionResult:
        if action == "pause":
            self._client.run(pause_call(sandbox_id))
            return ActionResult(sandbox_id, ok=True, message="paused")
        if action == "delete":
            self._client.run(kill_sandbox(sandbox_id))
            return ActionResult(sandbox_id, ok=True, message="deleted")
        if action == "resume":
            return self._resume(sandbox_id, at, resume_timeout_s)
        assert extend_by_s is not None  # _check_arguments
        return self._extend(sandbox_id, at, extend_by_s)

    def _resume(self, sandbox_id: str, at: datetime, timeout_s: int) -> ActionResult:
        connected = self._client.run(connect_sandbox(sandbox_id, timeout_s))
        done = "resumed" if connected.resumed else "already running"
        try:
            end_at = self._client.run(get_sandbox(sandbox_id)).end_at
        except E2BError as error:
            # The resume itself went through; only its new end is unknown.
            return ActionResult(sandbox_id, ok=True, message=f"{done}; end not known ({error})")
        return ActionResult(
            sandbox_id,
            ok=True,
            message=f"{done}; ends at {_time_words(end_at, at)}",
            new_end_at=end_at,
        )

    def _extend(self, sandbox_id: str, at: datetime, extend_by_s: int) -> ActionResult:
        outcome = self._client.run(extend_sandbox(sandbox_id, extend_by_s, clock=self._clock))
        end = _time_words(outcome.end_at, at)
        if outcome.outcome == "extended":
            message = (
                f"extended: now ends at {end} (was {_time_words(outcome.previous_end_at, at)})"
            )
            wanted_end = at + timedelta(seconds=extend_by_s)
            if (wanted_end - outcome.end_at).total_seconds() > CLOCK_SKEW_TOLERANCE_S:
                message += ", clamped by the team's maximum sandbox length"
            return ActionResult(sandbox_id, ok=True, message=message, new_end_at=outcome.end_at)
        if outcome.outcome == "already_later":
            message = f"not changed: it already ends later, at {end}"
            return ActionResult(sandbox_id, ok=True, message=message, new_end_at=outcome.end_at)
        if outcome.outcome == "not_running":
            message = "not running, cannot extend: resume it first"
            return ActionResult(sandbox_id, ok=False, message=message)
        message = f"not extended: the team's maximum sandbox length allows no more; ends at {end}"
        return ActionResult(sandbox_id, ok=False, message=message, new_end_at=outcome.end_at)


def _check_arguments(action: str, extend_by_s: int | None, resume_timeout_s: int) -> None:
    if action not in ACTION_NAMES:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTION_NAMES)}")
    if action == "extend" and (extend_by_s is None or extend_by_s <= 0):
        raise ValueError(f"extend needs extend_by_s of 1 s or more, got {extend_by_s}")
    if action == "resume" and resume_timeout_s <= 0:
        raise ValueError(f"resume needs resume_timeout_s of 1 s or more, got {resume_timeout_s}")


def _unique(sandbox_ids: Sequence[str]) -> list[str]:
    """The ids in order, each once: a doubled id would be acted on twice."""
    return list(dict.fromkeys(sandbox_ids))


def _time_words(moment: datetime, now: datetime) -> str:
    """`moment` in UTC: "12:05:00 UTC" on `now`'s day, else with the date."""
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return f"{moment:%H:%M:%S} UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
