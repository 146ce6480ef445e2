"""A template's builds and a build's log, read through the API (no Streamlit here).

A build's log is followed with `GET .../builds/{buildID}/status?logsOffset=`: each read asks
for the lines after those already had, at most 100 at a time. The log is outside text (a
build step's output): the lines kept are bounded (`MAX_LOG_LINES`, the newest) and so is
each line (`MAX_LINE_CHARS`), and pages show them as text, never Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from dashboard.common.metrics import MISSING
from dashboard.common.ranges import utc_text
from e2bapi import E2BClient
from e2bapi.actions import get_template, template_build_status, template_tags
from e2bapi.actions.templates import BUILD_LOGS_MAX_LIMIT
from e2bapi.models.templates import TemplateBuildStatus

MAX_LOG_LINES = 200
MAX_LINE_CHARS = 2000
# Reads of one refresh: a finished build's whole log (up to this many pages) is caught up
# at once, a running one's new lines arrive page by page.
MAX_READS_PER_REFRESH = 5
# Tags shown beside a template (a team may assign many).
MAX_TAGS_SHOWN = 50
BUILD_COLUMNS = ("build_id", "status", "created", "finished", "cpu", "memory")
FINISHED: tuple[TemplateBuildStatus, ...] = ("ready", "error")


@dataclass(frozen=True)
class BuildLog:
    """What is known of one build: its status, the newest log lines (bounded), how many
    lines were read in all (the next `logsOffset`), and why it failed, if it did."""

    template_id: str
    build_id: str
    status: TemplateBuildStatus | None = None
    lines: tuple[str, ...] = ()
    lines_read: int = 0
    reason: str | None = None

    @property
    def finished(self) -> bool:
        """Ready or failed: its log will not grow."""
        return self.status in FINISHED

    @property
    def lines_dropped(self) -> int:
        """Older lines read but no longer kept."""
        return self.lines_read - len(self.lines)


def _bounded(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def follow(client: E2BClient, log: BuildLog) -> BuildLog:
    """`log` with the build's status now and the lines written since it was read. Raises
    the API's `E2BError` (the caller puts it in words)."""
    for _ in range(MAX_READS_PER_REFRESH):
        info = client.run(
            template_build_status(
                log.template_id, log.build_id, log.lines_read, limit=BUILD_LOGS_MAX_LIMIT
            )
        )
        # Structured entries when the API gives them (the newer field), else plain lines.
        new = [e.message for e in info.log_entries] or list(info.logs)
        new = new[:BUILD_LOGS_MAX_LIMIT]  # an API sending more than asked is cut to it
        lines = (*log.lines, *(_bounded(line) for line in new))[-MAX_LOG_LINES:]
        reason = info.reason.message if info.reason is not None else log.reason
        log = replace(
            log,
            status=info.status,
            lines=lines,
            lines_read=log.lines_read + len(new),
            reason=None if reason is None else _bounded(reason),
        )
        if len(new) < BUILD_LOGS_MAX_LIMIT:
            break
    return log


def recent_builds(client: E2BClient, template_id: str, limit: int = 20) -> pd.DataFrame:
    """The template's builds (at most `limit`, the API's first page), newest first, as
    text ready to show (`BUILD_COLUMNS`). Raises the API's `E2BError`."""
    template = client.run(get_template(template_id, limit=limit))
    builds = sorted(template.builds, key=lambda b: b.created_at, reverse=True)
    rows = [
        {
            "build_id": b.build_id,
            "status": b.status,
            "created": utc_text(b.created_at),
            "finished": MISSING if b.finished_at is None else utc_text(b.finished_at),
            "cpu": f"{b.cpu_count} vCPU",
            "memory": f"{b.memory_mb} MiB",
        }
        for b in builds
    ]
    return pd.DataFrame(rows, columns=list(BUILD_COLUMNS))


def tags_text(client: E2BClient, template_id: str, quote: Callable[[str], str]) -> str:
    """The template's tags in words ("Tags: v1 (build …), latest (build …)"), at most
    `MAX_TAGS_SHOWN`, each tag and build ID passed through `quote` (outside text). Raises
    the API's `E2BError`."""
    tags = client.run(template_tags(template_id))
    if not tags:
        return "No tags."
    shown = ", ".join(f"{quote(t.tag)} (build {quote(t.build_id)})" for t in tags[:MAX_TAGS_SHOWN])
    more = len(tags) - MAX_TAGS_SHOWN
    return f"Tags: {shown}" + (f", and {more} more." if more > 0 else ".")
