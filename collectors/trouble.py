"""The trouble job: notice OOM kills, keep the log lines around them, record incidents.

Signs of trouble come from the poll (memory at 90 % of its limit, then settled; a sandbox
that left the list), the events job (killed events) and this job's own log sweep, which
reads each live sandbox's new log lines in turn: a process killed for memory inside a
sandbox that lives on shows up nowhere else, and a 5 s sample rarely catches memory on
its way up. The sweep records a confirmed OOM kill and its line at once, before any
waiting sign, so history never delays it. For each sign the job keeps the sandbox's log
lines before it and looks at its samples around it for suspected OOMs; live signs go
first, history gets a bounded share of each run (`collectors.work.TroubleWatch`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from collectors import oom, parse
from collectors.context import JobContext
from collectors.work import Trouble
from e2bapi import actions
from e2bapi.errors import E2BError, NotFoundError
from e2bapi.models.logs import SandboxLogEntry
from storage.rows import IncidentRow

log = logging.getLogger(__name__)

LOGS_PAGE_LINES = 1000
# Ends whose samples may hide an OOM. A timeout or a kill by the API explains an end, and
# an "oom" end is a confirmed incident already (from its killed event).
_UNEXPLAINED_ENDS = (None, "error")


def trouble(ctx: JobContext) -> int:
    """Sweep new log lines for OOM kills, then handle waiting signs of trouble: at most
    `trouble_per_run`, live ones first, at most `trouble_history_per_run` of history; the
    rest wait. Returns rows written."""
    sweep_logs(ctx)
    dropped = ctx.watch.dropped_history()
    if dropped:
        log.warning("%d old signs of trouble forgotten: more history than is kept", dropped)
    signs = ctx.watch.take(ctx.config.trouble_per_run, ctx.config.trouble_history_per_run)
    for index, sign in enumerate(signs):
        if ctx.stopping.is_set():
            ctx.watch.put_back(signs[index:])
            break
        try:
            handle(ctx, sign)
        except NotFoundError:
            log.debug("sandbox %s is unknown to the API; sign dropped", sign.sandbox_id)
        except E2BError:
            ctx.watch.put_back(signs[index:])
            raise
    return ctx.tally.rows


def sweep_logs(ctx: JobContext) -> None:
    """Read the next sandboxes' new log lines (round robin over the live ones); record each
    confirmed OOM kill at once, with its line, and flag it for the lines before it."""
    now = ctx.clock()
    live = ctx.store.live_sandbox_ids()
    for sandbox_id in ctx.sweep.next_sandboxes(live, ctx.config.log_sweep_per_run):
        if ctx.stopping.is_set():
            return
        cursor = ctx.sweep.cursor(sandbox_id, now)
        try:
            entries = ctx.client.run(
                actions.sandbox_logs(
                    sandbox_id, cursor=cursor, limit=LOGS_PAGE_LINES, direction="forward"
                )
            )
        except NotFoundError:
            continue  # gone since the list; its end is the poll's to notice
        lines = parse.log_line_rows(sandbox_id, entries)
        ctx.sweep.advance(sandbox_id, [line.ts for line in lines], len(entries) >= LOGS_PAGE_LINES)
        confirmed = oom.confirmed_from_logs(lines, now)
        if not confirmed:
            continue
        # Recorded here, not when its sign's turn comes: whatever waits in the watch, a
        # live OOM is on the page after this run.
        kill_times = {incident.occurred_at for incident in confirmed}
        ctx.wrote(ctx.store.add_log_lines([line for line in lines if line.ts in kill_times]))
        written = ctx.wrote(ctx.store.add_incidents(confirmed))
        if written:
            log.info("sandbox %s: %d OOM kill(s) recorded from its log", sandbox_id, written)
        for incident in confirmed:
            ctx.watch.flag(Trouble(sandbox_id, "oom_line", incident.occurred_at))


def handle(ctx: JobContext, sign: Trouble) -> None:
    """Keep the log lines before `sign` and record the OOM incidents around it."""
    now = ctx.clock()
    start = (sign.high_since or sign.at) - timedelta(seconds=ctx.config.trouble_before_s)
    end = min(sign.at + timedelta(seconds=ctx.config.trouble_after_s), now)
    lines = parse.log_line_rows(sign.sandbox_id, _lines_before(ctx, sign.sandbox_id, end))
    ctx.wrote(ctx.store.add_log_lines(lines))
    confirmed = oom.confirmed_from_logs(lines, now)
    suspected: list[IncidentRow] = []
    if sign.kind != "memory_high":
        history = ctx.client.run(
            actions.sandbox_metrics(sign.sandbox_id, max(start, end - _HOUR), end)
        )
        ended_at = (
            sign.at if sign.kind == "ended" and sign.end_reason in _UNEXPLAINED_ENDS else None
        )
        samples = parse.history_rows(sign.sandbox_id, history)
        suspected = oom.without_confirmed_twins(
            oom.suspected_from_samples(samples, ended_at, now), confirmed
        )
    written = ctx.wrote(ctx.store.add_incidents([*confirmed, *suspected]))
    if written:
        log.info(
            "sandbox %s: %d OOM incident(s) recorded (%s)", sign.sandbox_id, written, sign.kind
        )


def _lines_before(ctx: JobContext, sandbox_id: str, end: datetime) -> list[SandboxLogEntry]:
    """The sandbox's last `log_lines_kept` lines up to `end` (UTC), newest first."""
    return ctx.client.run(
        actions.sandbox_logs(
            sandbox_id, cursor=end, limit=ctx.config.log_lines_kept, direction="backward"
        )
    )


# Samples are looked at over at most an hour, so the API answers raw 5 s samples.
_HOUR = timedelta(seconds=3599)
