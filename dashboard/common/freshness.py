"""The banner on every page: how old the data is and which collector jobs are failing.

Input is `store.data_freshness(now)`: one row per job (job, last_run_at, last_success_at,
age_s, rows_written, last_error, retry_after_s), times aware UTC. The data's age is the
age of the last successful poll (the job that lists sandboxes and samples them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import pandas as pd

from dashboard.common.metrics import format_duration_s
from dashboard.common.ranges import as_utc, utc_text

POLL_JOB = "poll"
# Data older than this many poll intervals is late (warning), then stale (error).
WARN_AFTER_POLLS = 3
ERROR_AFTER_POLLS = 12
# Errors can carry a whole response body; the banner keeps the start of it.
MAX_ERROR_CHARS = 160

BannerLevel = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Banner:
    """`failing_jobs`: names of the jobs whose latest run failed, sorted."""

    level: BannerLevel
    text: str
    failing_jobs: list[str]


def freshness_banner(
    freshness: pd.DataFrame,
    now: datetime,
    poll_interval_s: float,
    quote: Callable[[str], str] = str,
) -> Banner:
    """The banner at `now` (UTC): ok while the poll succeeded within 3 intervals and no job's
    latest run failed; warning when the data is older than 3 polls (or there is none yet);
    error when it is older than 12 polls or any job's latest run failed. Errors are the
    API's words, so they go through `quote` (`plain_text.literal` for Markdown)."""
    rows = [] if freshness is None or freshness.empty else freshness.to_dict("records")
    failing = sorted((row for row in rows if _error(row) is not None), key=lambda r: r["job"])
    failing_jobs = [str(row["job"]) for row in failing]
    poll = next((row for row in rows if row["job"] == POLL_JOB), None)
    last_success = as_utc(poll.get("last_success_at")) if poll else None
    if last_success is None:
        if not failing:
            text = "No data yet: the collectors have not finished a poll."
            return Banner("warning", text, failing_jobs)
        text = "No data yet: " + "; ".join(_failure_text(row, now, quote) for row in failing) + "."
        return Banner("error", text, failing_jobs)
    age_s = max(0.0, (now - last_success).total_seconds())
    age_text = f"Data {format_duration_s(age_s)} old"
    if failing:
        text = f"{age_text}: " + "; ".join(_failure_text(row, now, quote) for row in failing) + "."
        return Banner("error", text, failing_jobs)
    if age_s > WARN_AFTER_POLLS * poll_interval_s:
        level: BannerLevel = "error" if age_s > ERROR_AFTER_POLLS * poll_interval_s else "warning"
        text = (
            f"{age_text}: no poll has finished since {utc_text(last_success, now)} "
            f"(expected every {format_duration_s(poll_interval_s)}); is the collector running?"
        )
        return Banner(level, text, failing_jobs)
    return Banner("ok", f"{age_text}; all {len(rows)} jobs healthy.", failing_jobs)


def _failure_text(row: dict[str, object], now: datetime, quote: Callable[[str], str]) -> str:
    """ "poll failing since 12:00:05 UTC (API unreachable: ...), retry in 30 s"."""
    since = as_utc(row.get("last_success_at"))
    when = f"since {utc_text(since, now)}" if since else "and has never succeeded"
    text = f"{row['job']} failing {when} ({quote(str(_error(row)))})"
    retry_s = row.get("retry_after_s")
    if isinstance(retry_s, int | float) and not pd.isna(retry_s) and retry_s > 0:
        text += f", retry in {format_duration_s(float(retry_s))}"
    return text


def _error(row: dict[str, object]) -> str | None:
    error = row.get("last_error")
    if not isinstance(error, str) or not error.strip():
        return None
    error = " ".join(error.split())
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"
