"""OOM kills, found in sandboxd's kernel records, killed events and memory samples. Pure.

Confirmed only from sources code in a sandbox cannot write:

- sandboxd's own record of a kernel OOM kill: a log entry whose structured field
  `record` is `kernel_oom` (see `sandboxd.journal`). sandboxd writes that field only
  when the kernel reports a kill in the box's memory cgroup; a box's output and command
  lines reach the log too, but only as message text and as the values of other fields.
- a killed event whose structured `kill_reason` is "oom" (E2B's control plane, or
  sandboxd when a box ends with kernel OOM kills on its cgroup's counter).

Words in a log line ("OOM kill: ...", "Out of memory", "oom-kill:...", "Killed process 12
(x)") prove nothing: a process prints them, or is named after them. They are not even a
hint here: a sign of trouble costs the trouble job API calls, so text may not raise one,
and the poll flags memory near its limit from the samples anyway.

E2B's cloud: its reference defines a log entry as level, message and string fields but
says nothing definite about an OOM entry or about who may write the fields, so no E2B log
entry confirms an OOM: E2B's OOMs are confirmed by the killed event's kill_reason alone.
E2B itself never writes sandboxd's mark; only an API that passed fields written in a box
through to its log entries could carry a forged one, and neither API does so today.

Suspected: a sample at or above 90 % of its memory limit followed by a drop to half of it
or less, or by the sandbox's end, with no confirmation nearby.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.rows import EventRow, IncidentRow, LogLineRow, SampleRow

HIGH_MEMORY_FRACTION = 0.9
DROP_FRACTION = 0.5
OOM_KILL_REASON = "oom"
# A suspected OOM this close to a confirmed one is the same kill seen twice.
SAME_KILL_WITHIN = timedelta(seconds=30)
# sandboxd's mark on its own kernel OOM records (`sandboxd.journal` writes the same names).
RECORD_FIELD = "record"
KERNEL_OOM_RECORD = "kernel_oom"
_MIB = 2**20
# The process name in a record is the kernel's task name (at most 15 bytes, chosen by the
# box's code); anything longer did not come from the kernel and is cut.
PROCESS_NAME_MAX_CHARS = 64


@dataclass(frozen=True)
class OomRecord:
    """What a kernel OOM record says: the process, its pid and the memory limit, where
    given."""

    process: str | None
    pid: int | None
    mem_limit_bytes: int | None


def kernel_oom_record(fields: Mapping[str, str]) -> OomRecord | None:
    """The OOM kill a log entry's structured `fields` record, or None unless they carry
    sandboxd's kernel OOM mark. The process, pid and memory limit come from the same
    fields (None where absent or not a number). A line's message is never read."""
    if fields.get(RECORD_FIELD) != KERNEL_OOM_RECORD:
        return None
    process = fields.get("process") or None
    return OomRecord(
        process=process[:PROCESS_NAME_MAX_CHARS] if process else None,
        pid=_int_or_none(fields.get("pid")),
        mem_limit_bytes=_int_or_none(fields.get("memory_limit_bytes")),
    )


def confirmed_from_logs(lines: Iterable[LogLineRow], detected_at: datetime) -> list[IncidentRow]:
    """One confirmed incident per kernel OOM record among `lines`, at the record's time.
    The evidence names the record, not the line's text."""
    incidents: list[IncidentRow] = []
    for line in lines:
        found = kernel_oom_record(_fields(line))
        if found is None:
            continue
        incidents.append(
            IncidentRow(
                sandbox_id=line.sandbox_id,
                kind="oom_confirmed",
                occurred_at=line.ts,
                detected_at=detected_at,
                process=found.process,
                pid=found.pid,
                mem_used_bytes=None,
                mem_total_bytes=found.mem_limit_bytes,
                evidence=_record_evidence(found),
            )
        )
    return incidents


def confirmed_from_events(events: Iterable[EventRow], detected_at: datetime) -> list[IncidentRow]:
    """A confirmed incident for each killed event with kill_reason "oom", at the event."""
    return [
        IncidentRow(
            sandbox_id=event.sandbox_id,
            kind="oom_confirmed",
            occurred_at=event.ts,
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
            and abs(known.occurred_at - incident.occurred_at) <= SAME_KILL_WITHIN
            for known in confirmed
        )
    ]


def _suspected(high: SampleRow, detected_at: datetime, then: str) -> IncidentRow:
    limit_mib = high.mem_total_bytes / _MIB
    return IncidentRow(
        sandbox_id=high.sandbox_id,
        kind="oom_suspected",
        occurred_at=high.ts,
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


def _record_evidence(found: OomRecord) -> str:
    limit = (
        f", memory limit {found.mem_limit_bytes // _MIB} MiB"
        if found.mem_limit_bytes is not None
        else ""
    )
    return f"sandboxd kernel OOM record{limit}"


def _int_or_none(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
