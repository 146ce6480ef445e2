"""OOM kills, found in log lines, killed events and memory samples. Pure functions.

Confirmed: a log line that reports an OOM kill (sandboxd's "OOM kill: python3 (pid 12)
killed, memory limit 128 MiB", or the kernel's words as E2B passes them on: "Out of
memory", "oom-kill", "Killed process 12 (python3)"), or a killed event whose kill_reason is
"oom". Suspected: a sample at or above 90 % of its memory limit followed by a drop to half
of it or less, or by the sandbox's end, with no confirmation nearby.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.rows import EventRow, IncidentRow, LogLineRow, SampleRow

HIGH_MEMORY_FRACTION = 0.9
DROP_FRACTION = 0.5
OOM_KILL_REASON = "oom"
# A suspected OOM this close to a confirmed one is the same kill seen twice.
SAME_KILL_WITHIN = timedelta(seconds=30)

_SANDBOXD = re.compile(
    r"OOM kill: (?P<process>.+?) \(pid (?P<pid>\d+|\?)\) killed"
    r"(?:, memory limit (?P<limit_mib>\d+) MiB)?"
)
_KILLED_PROCESS = re.compile(r"Killed process (?P<pid>\d+) \((?P<process>[^)]*)\)")
_OOM_KILL_TASK = re.compile(r"oom-kill:.*?\btask=(?P<process>[^,\s]+),pid=(?P<pid>\d+)")
_GENERIC = re.compile(r"out of memory|oom-kill|killed process", re.IGNORECASE)
_MIB = 2**20


@dataclass(frozen=True)
class OomLine:
    """What an OOM log line says: the process, its pid and the memory limit, where given."""

    process: str | None
    pid: int | None
    mem_limit_bytes: int | None


def oom_in_line(message: str, fields: dict[str, str] | None = None) -> OomLine | None:
    """The OOM kill a log line reports, or None. `fields` are the line's structured fields
    (sandboxd puts `process`, `pid` and `memory_limit_bytes` there)."""
    fields = fields or {}
    match = _SANDBOXD.search(message)
    if match is not None:
        process = match["process"] if match["process"] != "a process" else None
        pid = int(match["pid"]) if match["pid"].isdigit() else None
        limit = int(match["limit_mib"]) * _MIB if match["limit_mib"] else None
    else:
        if _GENERIC.search(message) is None:
            return None
        match = _KILLED_PROCESS.search(message) or _OOM_KILL_TASK.search(message)
        process = match["process"] if match else None
        pid = int(match["pid"]) if match else None
        limit = None
    return OomLine(
        process=fields.get("process") or process,
        pid=_int_or(fields.get("pid"), pid),
        mem_limit_bytes=_int_or(fields.get("memory_limit_bytes"), limit),
    )


def confirmed_from_logs(lines: Iterable[LogLineRow], detected_at: datetime) -> list[IncidentRow]:
    """One confirmed incident per log line that reports an OOM kill, at the line's time."""
    incidents: list[IncidentRow] = []
    for line in lines:
        found = oom_in_line(line.message, _fields(line))
        if found is None:
            continue
        incidents.append(
            IncidentRow(
                sandbox_id=line.sandbox_id,
                kind="oom_confirmed",
                at=line.ts,
                detected_at=detected_at,
                process=found.process,
                pid=found.pid,
                mem_used_bytes=None,
                mem_total_bytes=found.mem_limit_bytes,
                evidence=f"log line: {line.message}",
            )
        )
    return incidents


def confirmed_from_events(events: Iterable[EventRow], detected_at: datetime) -> list[IncidentRow]:
    """A confirmed incident for each killed event with kill_reason "oom", at the event."""
    return [
        IncidentRow(
            sandbox_id=event.sandbox_id,
            kind="oom_confirmed",
            at=event.ts,
            detected_at=detected_at,
            process=None,
            pid=None,
            mem_used_bytes=None,
            mem_total_bytes=None,
            evidence="killed event: kill_reason oom",
        )
        for event in events
        if event.kill_reason == OOM_KILL_REASON
    ]


def is_memory_high(sample: SampleRow) -> bool:
    """Whether a sample uses at least 90 % of its memory limit."""
    return (
        sample.mem_total_bytes > 0
        and sample.mem_used_bytes >= HIGH_MEMORY_FRACTION * sample.mem_total_bytes
    )


def suspected_from_samples(
    samples: Sequence[SampleRow], ended_at: datetime | None, detected_at: datetime
) -> list[IncidentRow]:
    """Suspected OOMs in one sandbox's samples (oldest first): a high sample followed by a
    drop to half or less, or the last sample high when the sandbox ended (`ended_at`, UTC;
    pass None unless the end's reason is unknown or an error). Each is stamped with the
    last high sample's time."""
    incidents: list[IncidentRow] = []
    for before, after in itertools.pairwise(samples):
        if is_memory_high(before) and after.mem_used_bytes <= DROP_FRACTION * before.mem_used_bytes:
            then = f"{_pct(after)} at {after.ts:%H:%M:%S}"
            incidents.append(_suspected(before, detected_at, then))
    if samples and ended_at is not None and is_memory_high(samples[-1]):
        incidents.append(_suspected(samples[-1], detected_at, f"ended at {ended_at:%H:%M:%S}"))
    return incidents


def without_confirmed_twins(
    suspected: Iterable[IncidentRow], confirmed: Sequence[IncidentRow]
) -> list[IncidentRow]:
    """The suspected incidents that no confirmed one of the same sandbox explains (within
    30 s): a kill seen both ways is recorded once, as confirmed."""
    return [
        incident
        for incident in suspected
        if not any(
            known.sandbox_id == incident.sandbox_id
            and abs(known.at - incident.at) <= SAME_KILL_WITHIN
            for known in confirmed
        )
    ]


def _suspected(high: SampleRow, detected_at: datetime, then: str) -> IncidentRow:
    limit_mib = high.mem_total_bytes / _MIB
    return IncidentRow(
        sandbox_id=high.sandbox_id,
        kind="oom_suspected",
        at=high.ts,
        detected_at=detected_at,
        process=None,
        pid=None,
        mem_used_bytes=high.mem_used_bytes,
        mem_total_bytes=high.mem_total_bytes,
        evidence=f"memory {_pct(high)} of {limit_mib:.0f} MiB at {high.ts:%H:%M:%S}, then {then}",
    )


def _pct(sample: SampleRow) -> str:
    if sample.mem_total_bytes <= 0:
        return "?"
    return f"{100 * sample.mem_used_bytes / sample.mem_total_bytes:.0f} %"


def _fields(line: LogLineRow) -> dict[str, str]:
    try:
        fields = json.loads(line.fields_json)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def _int_or(raw: str | None, fallback: int | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else fallback
