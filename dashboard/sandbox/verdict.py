"""How a sandbox ended (or that it has not), in words, with the evidence behind it.

The end reasons the store holds (`sandboxes.end_reason`) are the killed event's
`kill_reason` ("oom", "timeout", "killed by API", "error", "sandboxd shutdown" from
sandboxd; "killed" when the event names none: see `collectors.parse.kill_reason`),
"timeout" when a sandbox left the list after its end time with no killed event, or None
when nothing says why. OOM incidents are "oom_confirmed" (sandboxd's kernel OOM record or
a killed event says so) or "oom_suspected" (memory near its limit, then a drop or the end).
All times UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pandas as pd

from dashboard.common.metrics import format_duration_s
from dashboard.common.ranges import as_utc, utc_text
from dashboard.common.values import int_or_none, text_or_none
from storage import SandboxRecord

VerdictKind = Literal["running", "paused", "oom", "timeout", "killed", "error", "ended_unknown"]

KILLED_EVENT = "sandbox.lifecycle.killed"
PAUSED_EVENT = "sandbox.lifecycle.paused"
# An end this soon after an OOM incident, with no reason given, is taken to be caused by it:
# the kernel kills the largest process first, and a sandbox whose main process dies ends.
OOM_EXPLAINS_END_WITHIN = timedelta(seconds=60)
# How many incidents a verdict cites (newest first); the OOM page lists them all.
MAX_INCIDENTS_CITED = 3

_ENDS: Mapping[str, tuple[VerdictKind, str]] = {
    "oom": ("oom", "Killed by the kernel's OOM killer at {at}"),
    "timeout": ("timeout", "Timed out at {at}"),
    "killed by API": ("killed", "Killed through the API at {at}"),
    "killed": ("killed", "Killed at {at} (the killed event names no reason)"),
    "sandboxd shutdown": ("killed", "Killed at {at} when the local sandboxd shut down"),
    "error": ("error", "Ended with an error at {at}: its main process exited"),
    "paused": ("paused", "Paused at {at} and no longer listed"),
}


@dataclass(frozen=True)
class Verdict:
    """`headline` is one sentence; `evidence` the facts behind it, one bullet each; `at`
    when it ended (UTC), None while it has not."""

    kind: VerdictKind
    headline: str
    evidence: list[str]
    at: datetime | None


Quote = Callable[[str], str]
"""Makes outside text (kill reasons, process names, incident evidence) safe where the
verdict is shown: `dashboard.common.plain_text.literal` for Markdown."""


def _as_is(text: str) -> str:
    return text


def sandbox_verdict(
    record: SandboxRecord,
    events: pd.DataFrame,
    incidents: pd.DataFrame,
    now: datetime,
    quote: Quote = _as_is,
) -> Verdict:
    """The verdict on one sandbox from its record (`store.sandbox_record`), its lifecycle
    events (`events_since` columns, any order) and its OOM incidents (any order). Every
    piece of outside text in it went through `quote`."""
    event_rows = _rows(events, "ts")
    incident_rows = _rows(incidents, "occurred_at")
    if not record.ended:
        return _alive(record, event_rows, incident_rows, now, quote)
    return _ended(record, event_rows, incident_rows, now, quote)


def _alive(
    record: SandboxRecord,
    events: list[dict[str, object]],
    incidents: list[dict[str, object]],
    now: datetime,
    quote: Quote,
) -> Verdict:
    evidence = _seen(record, now)
    cited = incidents[-MAX_INCIDENTS_CITED:][::-1]
    evidence += [_incident_text(row, now, quote) + "; the sandbox kept running" for row in cited]
    end_at = as_utc(record.end_at)
    if record.state == "paused":
        paused = _last(events, PAUSED_EVENT)
        # A paused sandbox's end_at is when it paused (E2B's rule); a later one is not that.
        since = as_utc(paused["ts"]) if paused else (end_at if end_at and end_at <= now else None)
        if paused is not None and since is not None:
            evidence.insert(0, f"paused event at {utc_text(since, now)}")
        when = f" since {utc_text(since, now)}" if since else ""
        return Verdict("paused", f"Paused{when}", evidence, None)
    if end_at is None:
        return Verdict("running", "Still running", evidence, None)
    left_s = (end_at - now).total_seconds()
    evidence.append(f"scheduled end (timeout) at {utc_text(end_at, now)}")
    if left_s > 0:
        headline = f"Still running, {format_duration_s(left_s)} left before timeout"
    else:
        headline = f"Still listed as running, though its timeout was due at {utc_text(end_at, now)}"
    return Verdict("running", headline, evidence, None)


def _ended(
    record: SandboxRecord,
    events: list[dict[str, object]],
    incidents: list[dict[str, object]],
    now: datetime,
    quote: Quote,
) -> Verdict:
    killed = _last(events, KILLED_EVENT)
    reason = text_or_none(record.end_reason) or (
        text_or_none(killed["kill_reason"]) if killed else None
    )
    at = as_utc(record.ended_at) or (as_utc(killed["ts"]) if killed else None)
    evidence = _end_evidence(record, killed, reason, at, now, quote)
    cited = incidents[-MAX_INCIDENTS_CITED:][::-1]
    evidence += [_incident_text(row, now, quote) for row in cited]
    evidence += _seen(record, now)
    when = utc_text(at, now) if at else "an unknown time"
    if reason in (None, "error"):
        cause = _oom_before(incidents, at or as_utc(record.last_seen_at))
        if cause is not None:
            return _oom_cause(cause, reason, at, evidence, now)
    if reason is None:
        seen = as_utc(record.last_seen_at)
        last = f"; last listed at {utc_text(seen, now)}" if seen else ""
        headline = f"Ended at {when}, for an unknown reason{last}"
        return Verdict("ended_unknown", headline, evidence, at)
    if reason not in _ENDS:  # a reason E2B may add later: shown as it came
        return Verdict("killed", f"Killed at {when} (reason: {quote(reason)})", evidence, at)
    kind, headline = _ENDS[reason]
    return Verdict(kind, headline.format(at=when), evidence, at)


def _end_evidence(
    record: SandboxRecord,
    killed: dict[str, object] | None,
    reason: str | None,
    at: datetime | None,
    now: datetime,
    quote: Quote,
) -> list[str]:
    if killed is not None:
        line = f"killed event at {utc_text(as_utc(killed['ts']) or now, now)}"
        kill_reason = text_or_none(killed["kill_reason"])
        line += f' with kill_reason "{quote(kill_reason)}"' if kill_reason else " naming no reason"
        ran_s = _execution_s(killed.get("event_data_json"))
        return [line + (f", after running {format_duration_s(ran_s)}" if ran_s else "")]
    if reason == "timeout":
        end_at = as_utc(record.end_at) or at
        due = f" ({utc_text(end_at, now)})" if end_at else ""
        return [f"no killed event; it left the list after its scheduled end{due}"]
    if reason is not None:
        return [f'end reason "{quote(reason)}" on record; no killed event stored']
    return ["no killed event found and no end reason on record"]


def _oom_cause(
    cause: dict[str, object],
    reason: str | None,
    at: datetime | None,
    evidence: list[str],
    now: datetime,
) -> Verdict:
    oom_at = as_utc(cause["occurred_at"]) or now
    when = utc_text(at, now) if at else "an unknown time"
    likely = (
        "Ran out of memory" if cause["kind"] == "oom_confirmed" else "Probably ran out of memory"
    )
    headline = f"{likely}: ended at {when}, after an OOM at {utc_text(oom_at, now)}"
    if reason == "error":
        headline += " (end reported as an error)"
    note = f"the end came within {OOM_EXPLAINS_END_WITHIN.seconds} s of that OOM"
    return Verdict("oom", headline, [*evidence, note], at)


def _oom_before(
    incidents: list[dict[str, object]], end: datetime | None
) -> dict[str, object] | None:
    """The latest incident in the minute before `end` (or at it), confirmed ones first."""
    if end is None:
        return None
    near = [
        row
        for row in incidents
        if (at := as_utc(row["occurred_at"])) is not None
        and end - OOM_EXPLAINS_END_WITHIN <= at <= end
    ]
    confirmed = [row for row in near if row["kind"] == "oom_confirmed"]
    chosen = confirmed or near
    return chosen[-1] if chosen else None


def _incident_text(row: Mapping[str, object], now: datetime, quote: Quote) -> str:
    confirmed = row.get("kind") == "oom_confirmed"
    what = "confirmed OOM kill" if confirmed else "suspected OOM (from metrics)"
    process, pid = text_or_none(row.get("process")), int_or_none(row.get("pid"))
    if process:
        what += f" of {quote(process)}" + (f" (pid {pid})" if pid is not None else "")
    at = as_utc(row.get("occurred_at"))
    line = f"{what} at {utc_text(at, now)}" if at else what
    detail = text_or_none(row.get("evidence"))
    return f"{line}: {quote(detail)}" if detail else line


def _seen(record: SandboxRecord, now: datetime) -> list[str]:
    seen = as_utc(record.last_seen_at)
    return [f"last listed at {utc_text(seen, now)}"] if seen else []


def _rows(frame: pd.DataFrame, time_column: str) -> list[dict[str, object]]:
    if frame is None or frame.empty:
        return []
    records: list[dict[str, object]] = frame.sort_values(time_column).to_dict("records")
    return records


def _last(events: list[dict[str, object]], event_type: str) -> dict[str, object] | None:
    matching = [row for row in events if row.get("type") == event_type]
    return matching[-1] if matching else None


def _execution_s(event_data_json: object) -> float | None:
    """Seconds the sandbox ran, from a killed event's eventData.execution.execution_time (ms)."""
    try:
        data = json.loads(str(event_data_json))
        ms = data["execution"]["execution_time"]
    except (ValueError, KeyError, TypeError):
        return None
    return float(ms) / 1000 if isinstance(ms, int | float) and ms > 0 else None
