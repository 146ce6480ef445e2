"""What sandboxd writes down about each sandbox: its details, its log, its lifecycle events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandboxd import events
from sandboxd.agent.messages import AgentEvent, ProcessStarted
from sandboxd.isolation.base import OomKill
from sandboxd.log_budget import MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, LogBudget, clipped
from sandboxd.records import SandboxRecord
from sandboxd.store import LogLine, Store

MIB = 1024 * 1024
# The field that marks sandboxd's own record of a kernel OOM kill, and its value. Monitors
# confirm an OOM only on it (sandscope's collectors.oom reads the same two names): message
# text is written by code in the box, but no box text can set this field, as `log` drops
# it from every caller's fields and only `oom_kill` writes it, for kills the kernel reports.
RECORD_FIELD = "record"
KERNEL_OOM_RECORD = "kernel_oom"


class Journal:
    """Writes a sandbox's details, log lines and events to the store, stamped by `clock`.

    Lines a sandbox's user causes (its processes starting and ending) go through `budget`;
    lines sandboxd writes about the sandbox itself (created, paused, ended, OOM kills) do
    not, on purpose: they are few, and a flood must never hide why a sandbox died.
    """

    def __init__(
        self,
        store: Store,
        team_id: str,
        clock: Callable[[], datetime],
        budget: LogBudget | None = None,
    ) -> None:
        self.store = store
        self.team_id = team_id
        self.clock = clock
        self.budget = budget or LogBudget()

    def save(self, record: SandboxRecord) -> None:
        """Keep the record's current details."""
        self.store.save_sandbox(record.sandbox_id, record.to_json(), record.state)

    def event(self, record: SandboxRecord, event_type: str, data: dict[str, Any]) -> None:
        """A lifecycle event, `eventData` without its empty parts."""
        data = {key: value for key, value in data.items() if value is not None}
        event = events.lifecycle_event(record, event_type, self.clock(), self.team_id, data)
        self.store.add_event(event)

    def log(
        self, record: SandboxRecord, level: str, message: str, fields: dict[str, str] | None = None
    ) -> None:
        """A line in the sandbox's log. `fields` may not mark it as a kernel record."""
        own = {key: value for key, value in (fields or {}).items() if key != RECORD_FIELD}
        self._write(record, level, message, own)

    def _write(
        self, record: SandboxRecord, level: str, message: str, fields: dict[str, str]
    ) -> None:
        ts_ms = int(self.clock().timestamp() * 1000)
        message = clipped(message, MAX_MESSAGE_CHARS)
        fields = {key: clipped(value, MAX_FIELD_CHARS) for key, value in fields.items()}
        self.store.add_log(LogLine(record.sandbox_id, ts_ms, level, message, fields))

    def _budgeted(
        self, record: SandboxRecord, level: str, message: str, fields: dict[str, str]
    ) -> None:
        """A line the sandbox's user caused: kept if the sandbox's budget allows, after a
        line reporting the ones dropped before it."""
        dropped_lines = self.budget.take(record.sandbox_id)
        if dropped_lines is None:
            return
        self._report_dropped(record, dropped_lines)
        self.log(record, level, message, fields)

    def _report_dropped(self, record: SandboxRecord, dropped_lines: int) -> None:
        if dropped_lines > 0:
            message = self.budget.dropped_message(dropped_lines)
            self._write(record, "warn", message, {"dropped_lines": str(dropped_lines)})

    def ended(self, record: SandboxRecord, reason: str, *, failed: bool) -> None:
        """Mark the sandbox killed: details, the killed event with its reason, a log line."""
        now = self.clock()
        record.state = "killed"
        record.ended_at = now
        record.kill_reason = reason
        self.save(record)
        execution = events.execution(record, now)
        self.event(record, events.KILLED, {"execution": execution, "kill_reason": reason})
        # The last count of dropped lines: nothing would report it later.
        self._report_dropped(record, self.budget.settle(record.sandbox_id))
        self.log(record, "error" if failed else "info", f"sandbox ended: {reason}")

    def process_event(self, record: SandboxRecord, event: AgentEvent) -> None:
        """A command started or ended inside the sandbox."""
        if isinstance(event, ProcessStarted):
            command = " ".join([event.cmd, *event.args])
            fields = {"pid": str(event.pid), "cmd": command}
            self._budgeted(record, "info", f"process {event.pid} started: {command}", fields)
            return
        level = "info" if event.end.exit_code == 0 else "warn"
        fields = {"pid": str(event.pid), "status": event.end.status}
        self._budgeted(record, level, f"process {event.pid} ended: {event.end.status}", fields)

    def oom_kill(self, record: SandboxRecord, oom: OomKill) -> None:
        """Count an OOM kill and log it at level error, with the process and the limit."""
        record.oom_kills += 1
        self.save(record)
        who = f"{oom.process_name or 'a process'} (pid {oom.pid if oom.pid is not None else '?'})"
        fields = {
            "process": oom.process_name or "",
            "pid": "" if oom.pid is None else str(oom.pid),
            "memory_limit_bytes": str(oom.memory_limit_bytes),
            "at": oom.at.isoformat(),
        }
        # Full isolation hears of a kill from the kernel (its log and the memory cgroup's
        # counter); reduced isolation only guesses one from a SIGKILL it did not send,
        # which the box's own code can send too.
        if record.isolation.split(" ", 1)[0] == "full":
            fields[RECORD_FIELD] = KERNEL_OOM_RECORD
        limit_mib = oom.memory_limit_bytes // MIB
        message = f"OOM kill: {who} killed, memory limit {limit_mib} MiB"
        self._write(record, "error", message, fields)
