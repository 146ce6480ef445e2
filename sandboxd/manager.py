"""The sandboxes' lifecycle: create, pause, resume, change their lifetime, end them.

All state changes happen on the event loop's thread; the OOM watcher's thread hands its
findings over with `call_soon_threadsafe`. Every change is saved to the store, logged in the
sandbox's log and, where E2B has one, recorded as a lifecycle event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sandboxd import events
from sandboxd.agent.client import AgentClient
from sandboxd.agent.messages import AgentClosed, AgentError, AgentEvent
from sandboxd.isolation.base import AGENT_PATH_INSIDE, Box, BoxSpec, Isolation, OomKill
from sandboxd.journal import Journal
from sandboxd.planning import CreateRequest, plan_sandbox
from sandboxd.problems import ApiProblem
from sandboxd.records import SandboxRecord
from sandboxd.store import Store
from sandboxd.templates import Template, TemplateLookup
from sandboxd.templates.layers import LayerError
from sandboxd.templates.startup import prepare_box

log = logging.getLogger(__name__)

SANDBOX_ID_ALPHABET = string.ascii_lowercase + string.digits
SANDBOX_ID_LENGTH = 20
REFRESH_MIN_S = 15
REFRESH_MAX_S = 3600
REFRESH_DEFAULT_S = 60
AGENT_READY_TIMEOUT_S = 15.0
AGENT_COMMAND = ("/usr/bin/python3", "-I", AGENT_PATH_INSIDE)

KILLED_BY_API = "killed by API"
TIMEOUT = "timeout"
OOM = "oom"
ERROR = "error"
SHUTDOWN = "sandboxd shutdown"
# The agent broke the channel protocol (see sandboxd/agent/channel.py): what the box's
# code wrote was refused and the box killed. Distinct from ERROR, a crash of the agent.
AGENT_PROTOCOL_VIOLATION = "agent protocol violation"
FAILED_REASONS = (OOM, ERROR, AGENT_PROTOCOL_VIOLATION)
# A violation's text may quote what code in the box wrote: the log keeps this much of it,
# enough to say which rule was broken (the channel's own texts are well under it).
MAX_VIOLATION_LOG_CHARS = 300
# What a cut-off agent still writes is read and dropped in chunks of this size, so it
# costs sandboxd one chunk at a time.
DEAD_AGENT_DRAIN_CHUNK_BYTES = 1 << 16


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _drain_agent_pipe(process: asyncio.subprocess.Process) -> None:
    """Read the agent's stdout to its end, dropping it a chunk at a time. A channel cut off
    for a violation stops reading, and asyncio (3.11) lets `process.wait()` return only
    once every pipe has ended: unread, a full pipe would hang the box's kill."""
    if process.stdout is None:
        return
    with contextlib.suppress(ConnectionError):
        while await process.stdout.read(DEAD_AGENT_DRAIN_CHUNK_BYTES):
            pass


def quoted_violation(violation: str) -> str:
    """`violation` as one printable line of at most MAX_VIOLATION_LOG_CHARS (plus a marker
    when cut): control characters, which box code may have put in it, become "?"."""
    text = "".join(c if c.isprintable() else "?" for c in violation[:MAX_VIOLATION_LOG_CHARS])
    cut = len(violation) - MAX_VIOLATION_LOG_CHARS
    return text + (f" [{cut} more characters cut]" if cut > 0 else "")


@dataclass
class LiveSandbox:
    """A sandbox that is running or paused, with its box and its agent."""

    record: SandboxRecord
    box: Box
    agent: AgentClient
    watcher: asyncio.Task[None] | None = None


class SandboxManager:
    """Every live sandbox, and the rules for changing them."""

    def __init__(
        self,
        *,
        isolation: Isolation,
        store: Store,
        team_id: str,
        max_sandboxes: int,
        max_length_s: int,
        max_processes: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.isolation = isolation
        self.store = store
        self.team_id = team_id
        self.journal = Journal(store, team_id, clock)
        self.max_sandboxes = max_sandboxes
        self.templates = TemplateLookup()
        self.max_length_s = max_length_s
        self.max_processes = max_processes
        self.clock = clock
        self.live: dict[str, LiveSandbox] = {}
        self.started_at = clock()
        # Per template since this start: how many sandboxes, and the last one's start (UTC).
        self.spawns: dict[str, tuple[int, datetime]] = {}
        self.start_times: list[datetime] = []
        self.idempotency_keys: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        # Built templates' start commands, their output followed into the sandbox's log.
        self._start_commands: set[asyncio.Task[None]] = set()

    @property
    def isolation_note(self) -> str:
        """The isolation level and its limits, in words."""
        limits = " ".join(self.isolation.limitations)
        return self.isolation.level + (f" ({limits})" if limits else "")

    async def start(self) -> list[str]:
        """Clean up after a dead run and begin watching for OOM kills; say what was cleaned."""
        self._loop = asyncio.get_running_loop()
        cleaned = await self.isolation.cleanup_leftovers()
        for record_json, state in self.store.sandboxes_in_states(["running", "paused"]):
            record = SandboxRecord.from_json(record_json)
            cleaned.append(f"sandbox {record.sandbox_id} ({state}) ended with the last run")
            self._end_record(record, ERROR)
        self.isolation.on_oom(self._oom_from_thread)
        return cleaned

    # --- create ------------------------------------------------------------------------

    async def create(
        self, request: CreateRequest, idempotency_key: str | None = None
    ) -> SandboxRecord:
        """Start a sandbox; raises ApiProblem for bad input or when at the limit.

        A create repeated with the same `idempotency_key` (the SDK retries with one) gets
        the sandbox the first one made, while that sandbox lives.
        """
        if idempotency_key is not None:
            earlier = self.live.get(self.idempotency_keys.get(idempotency_key, ""))
            if earlier is not None:
                return earlier.record
        self._check_timeout(request.timeout_s)
        running = sum(1 for live in self.live.values() if live.record.state == "running")
        if running >= self.max_sandboxes:
            raise ApiProblem(
                429,
                f"You have reached the maximum number of concurrent E2B sandboxes "
                f"({self.max_sandboxes}). Kill some sandboxes or raise SANDBOXD_MAX_SANDBOXES.",
            )
        now = self.clock()
        template = self.templates.find(request.template)
        record, spec = plan_sandbox(
            request, template, self._new_sandbox_id(), now, self.isolation_note, self.max_processes
        )
        if template is not None and template.envs:  # a built template's ENV steps
            spec = replace(spec, env_vars={**template.envs, **spec.env_vars})
        live = await self._launch(record, spec)
        if template is not None and not template.built_in:
            await self._prepare_from_template(live, template)
        self.live[record.sandbox_id] = live
        if idempotency_key is not None:
            self.idempotency_keys[idempotency_key] = record.sandbox_id
        live.watcher = asyncio.create_task(self._watch_agent(live))
        self.start_times.append(now)
        count, _ = self.spawns.get(record.template_id, (0, now))
        self.spawns[record.template_id] = (count + 1, now)
        self.journal.save(record)
        self.journal.event(record, events.CREATED, {"sandbox_metadata": record.metadata or None})
        self.journal.log(record, "info", f"sandbox created from template {record.alias}")
        return record

    async def _launch(self, record: SandboxRecord, spec: BoxSpec) -> LiveSandbox:
        """The box with its agent up; ApiProblem 503 (and nothing left behind) otherwise."""
        try:
            box = await self.isolation.launch(spec, AGENT_COMMAND)
        except Exception as failure:  # a request boundary: the caller gets a 503
            log.exception("sandbox %s could not start", record.sandbox_id)
            raise ApiProblem(503, f"the sandbox could not start: {failure}") from None
        agent = self._agent_for(record, box)
        try:
            await asyncio.wait_for(agent.wait_ready(), AGENT_READY_TIMEOUT_S)
        except (AgentClosed, TimeoutError):
            await agent.aclose()
            await box.kill()
            await box.destroy()
            raise ApiProblem(
                503, "the sandbox could not start: its agent did not come up"
            ) from None
        return LiveSandbox(record, box, agent)

    async def _prepare_from_template(self, live: LiveSandbox, template: Template) -> None:
        """A built template's layer, start and ready commands (sandboxd/templates/startup.py);
        a 503 (and the box gone) when its layer cannot be put in."""

        def log_line(level: str, message: str) -> None:
            self.journal.log(live.record, level, message)

        try:
            await prepare_box(template, live.agent, log_line, self._start_commands)
        except (LayerError, AgentError, OSError) as failure:  # OSError: its layer file gone
            await live.agent.aclose()
            await live.box.kill()
            await live.box.destroy()
            raise ApiProblem(503, f"the sandbox could not start: {failure}") from None

    def _agent_for(self, record: SandboxRecord, box: Box) -> AgentClient:
        def on_process_event(event: AgentEvent) -> None:
            self.journal.process_event(record, event)

        return AgentClient.for_process(box.process, on_event=on_process_event)

    def _new_sandbox_id(self) -> str:
        while True:
            candidate = "".join(
                secrets.choice(SANDBOX_ID_ALPHABET) for _ in range(SANDBOX_ID_LENGTH)
            )
            if candidate not in self.live and self.store.sandbox(candidate) is None:
                return candidate

    # --- lookups -----------------------------------------------------------------------

    def get(self, sandbox_id: str) -> LiveSandbox:
        """A running or paused sandbox, or a 404."""
        live = self.live.get(sandbox_id)
        if live is None:
            raise ApiProblem(404, f"sandbox '{sandbox_id}' not found")
        return live

    def known_record(self, sandbox_id: str) -> SandboxRecord:
        """Any sandbox ever seen (killed ones too, for metrics, logs and events), or a 404."""
        live = self.live.get(sandbox_id)
        if live is not None:
            return live.record
        stored = self.store.sandbox(sandbox_id)
        if stored is None:
            raise ApiProblem(404, f"sandbox '{sandbox_id}' not found")
        return SandboxRecord.from_json(stored[0])

    # --- lifetime ----------------------------------------------------------------------

    async def pause(self, sandbox_id: str) -> None:
        """Freeze a running sandbox (409 if it is not running)."""
        live = self.get(sandbox_id)
        record = live.record
        if record.state != "running":
            raise ApiProblem(409, f"sandbox '{sandbox_id}' is already paused")
        await live.box.freeze()
        now = self.clock()
        record.state = "paused"
        record.end_at = now  # E2B reports a paused sandbox's end as the moment it paused
        self.journal.save(record)
        self.journal.event(record, events.PAUSED, {"execution": events.execution(record, now)})
        self.journal.log(record, "info", "sandbox paused")

    async def connect(self, sandbox_id: str, timeout_s: int) -> tuple[SandboxRecord, bool]:
        """Resume a paused sandbox or reach a running one; the end only moves later.
        Returns the record and whether it was resumed."""
        live = self.get(sandbox_id)
        record = live.record
        self._check_timeout(timeout_s, allow_zero=True)
        now = self.clock()
        wanted_end = now + timedelta(seconds=timeout_s)
        if record.state == "running":
            if wanted_end > record.end_at:
                self._set_end(record, min(wanted_end, self._latest_end(record)))
            return record, False
        await live.box.thaw()
        record.state = "running"
        record.end_at = wanted_end
        self.journal.save(record)
        self.journal.event(record, events.RESUMED, {})
        self.journal.log(record, "info", "sandbox resumed")
        return record, True

    def set_timeout(self, sandbox_id: str, timeout_s: int) -> None:
        """End the running sandbox `timeout_s` from now (this may shorten its life)."""
        record = self._running(sandbox_id)
        # The spec's minimum is 0: the end is now (docs/E2B-API.md, "A sandbox's lifetime").
        self._check_timeout(timeout_s, allow_zero=True)
        self._set_end(record, self.clock() + timedelta(seconds=timeout_s))

    def refresh(self, sandbox_id: str, duration_s: int | None) -> None:
        """Keep the running sandbox alive at least `duration_s` more (never shortens)."""
        record = self._running(sandbox_id)
        duration_s = REFRESH_DEFAULT_S if duration_s is None else duration_s
        if not 0 <= duration_s <= REFRESH_MAX_S:
            raise ApiProblem(400, f"duration must be between 0 and {REFRESH_MAX_S} seconds")
        wanted_end = self.clock() + timedelta(seconds=max(duration_s, REFRESH_MIN_S))
        if wanted_end > record.end_at:
            self._set_end(record, min(wanted_end, self._latest_end(record)))

    def _running(self, sandbox_id: str) -> SandboxRecord:
        record = self.get(sandbox_id).record
        if record.state != "running":
            raise ApiProblem(409, f"sandbox '{sandbox_id}' is not running")
        return record

    def _check_timeout(self, timeout_s: int, *, allow_zero: bool = False) -> None:
        lowest = 0 if allow_zero else 1
        if not lowest <= timeout_s <= self.max_length_s:
            raise ApiProblem(
                400,
                f"timeout must be between {lowest} and {self.max_length_s} seconds "
                f"(the maximum sandbox length), got {timeout_s}",
            )

    def _latest_end(self, record: SandboxRecord) -> datetime:
        return record.started_at + timedelta(seconds=self.max_length_s)

    def _set_end(self, record: SandboxRecord, end_at: datetime) -> None:
        record.end_at = end_at
        self.journal.save(record)
        self.journal.event(record, events.UPDATED, {"set_timeout": end_at.isoformat()})

    async def expire_due(self) -> None:
        """Kill (or pause, with autoPause) every running sandbox past its end."""
        now = self.clock()
        for live in list(self.live.values()):
            record = live.record
            if record.state != "running" or record.end_at > now:
                continue
            if record.auto_pause:
                await self.pause(record.sandbox_id)
            else:
                await self.kill(record.sandbox_id, TIMEOUT)

    # --- ending --------------------------------------------------------------------------

    async def kill(self, sandbox_id: str, reason: str = KILLED_BY_API) -> None:
        """End a sandbox in any state; `reason` goes into the killed event."""
        live = self.live.pop(sandbox_id, None)
        if live is None:
            raise ApiProblem(404, f"sandbox '{sandbox_id}' not found")
        self.idempotency_keys = {
            key: owner for key, owner in self.idempotency_keys.items() if owner != sandbox_id
        }
        if live.watcher is not None and live.watcher is not asyncio.current_task():
            live.watcher.cancel()
        # Recorded first: once the sandbox is gone from the API, its killed event is there.
        self._end_record(live.record, reason)
        try:
            await live.box.kill()
            await live.box.destroy()
        finally:
            await live.agent.aclose()

    def _end_record(self, record: SandboxRecord, reason: str) -> None:
        self.journal.ended(record, reason, failed=reason in FAILED_REASONS)

    async def _watch_agent(self, live: LiveSandbox) -> None:
        """The agent is the sandbox's main process: when it dies, the sandbox ends."""
        await asyncio.shield(live.agent.closed)
        if self._closing or live.record.sandbox_id not in self.live:
            return
        violation = live.agent.violation
        if violation is not None:
            quoted = quoted_violation(violation)
            self.journal.log(live.record, "error", f"the agent broke the protocol: {quoted}")
            reason = AGENT_PROTOCOL_VIOLATION
        elif live.box.oom_kill_count() > 0:
            # The kernel kills the biggest process first, so a dead agent with OOM kills on
            # record means memory ran out for the sandbox as a whole.
            reason = OOM
        else:
            reason = ERROR
        # The channel's reader has ended: nobody else reads the pipe while this runs, and
        # the kill bounds it (the pipe ends when the box's processes are gone).
        drain = asyncio.create_task(_drain_agent_pipe(live.box.process))
        try:
            await self.kill(live.record.sandbox_id, reason)
        finally:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)

    async def shutdown(self) -> None:
        """Kill every sandbox, recording why."""
        self._closing = True
        for sandbox_id in list(self.live):
            try:
                await self.kill(sandbox_id, SHUTDOWN)
            except Exception:  # keep going: every sandbox must be ended
                log.exception("sandbox %s did not end cleanly", sandbox_id)
        self.isolation.close()

    # --- OOM -----------------------------------------------------------------------------

    def _oom_from_thread(self, oom: OomKill) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.record_oom, oom)

    def record_oom(self, oom: OomKill) -> None:
        """Count an OOM kill and log it in its sandbox's log; at the reduced level, where
        no kernel record confirms it, log it as suspected only, and do not count it."""
        live = self.live.get(oom.sandbox_id)
        record = live.record if live else self.known_record(oom.sandbox_id)
        if record.isolation.split(" ", 1)[0] == "full":
            self.journal.oom_kill(record, oom)
            return
        # Reduced isolation only sees a SIGKILL of the box's main process that sandboxd did
        # not send: the kernel's OOM killer may have sent it, or code in the box (without
        # bwrap, box code runs as the main process's uid and may signal it).
        pid = "?" if oom.pid is None else str(oom.pid)
        message = (
            f"suspected OOM kill, not confirmed: the main process (pid {pid}) was killed by a "
            "SIGKILL sandboxd did not send; the kernel's OOM killer or code in the sandbox "
            "may have sent it, and no kernel record says which"
        )
        self.journal.log(record, "warn", message, {"pid": "" if oom.pid is None else pid})
