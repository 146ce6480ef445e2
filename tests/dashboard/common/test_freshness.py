from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboard.common.freshness import freshness_banner

NOW = datetime(2025, 5, 1, 12, 10, 0, tzinfo=UTC)
JOBS = ["backfill", "events", "maintenance", "poll", "slow", "team", "trouble"]
POLL_S = 5.0


def freshness(poll_age_s: float | None = 4.0, **errors: str) -> pd.DataFrame:
    """data_freshness-shaped frame: every job succeeded `poll_age_s` ago (None: never),
    except the jobs named in `errors`, whose latest run failed with that error."""
    rows = []
    for job in JOBS:
        success = None if poll_age_s is None else NOW - timedelta(seconds=poll_age_s)
        rows.append(
            {
                "job": job,
                "last_run_at": NOW - timedelta(seconds=1),
                "last_success_at": success,
                "age_s": math.nan if success is None else poll_age_s,
                "rows_written": 3,
                "last_error": errors.get(job),
                "retry_after_s": math.nan,
            }
        )
    df = pd.DataFrame(rows)
    for column in ("last_run_at", "last_success_at"):
        df[column] = pd.to_datetime(df[column], utc=True).astype("datetime64[us, UTC]")
    return df


def test_all_healthy() -> None:
    banner = freshness_banner(freshness(4.2), NOW, POLL_S)
    assert banner.level == "ok"
    assert banner.text == "Data 4 s old; all 7 jobs healthy."
    assert banner.failing_jobs == []


def test_no_runs_yet() -> None:
    banner = freshness_banner(pd.DataFrame(), NOW, POLL_S)
    assert banner.level == "warning"
    assert banner.text == "No data yet: the collectors have not finished a poll."


def test_poll_never_succeeded() -> None:
    banner = freshness_banner(
        freshness(None, poll="API unreachable: connection refused"), NOW, POLL_S
    )
    assert banner.level == "error"
    assert banner.text == (
        "No data yet: poll failing and has never succeeded (API unreachable: connection refused)."
    )
    assert banner.failing_jobs == ["poll"]


def test_failing_poll_says_since_when_and_why() -> None:
    banner = freshness_banner(freshness(175.0, poll="API unreachable: timed out"), NOW, POLL_S)
    assert banner.level == "error"
    assert banner.text == (
        "Data 2 min old: poll failing since 12:07:05 UTC (API unreachable: timed out)."
    )


def test_any_failing_job_is_an_error_even_with_fresh_data() -> None:
    banner = freshness_banner(
        freshness(3.0, team="HTTP 403: wrong team ID", events="HTTP 500"), NOW, POLL_S
    )
    assert banner.level == "error"
    assert banner.failing_jobs == ["events", "team"]
    assert banner.text == (
        "Data 3 s old: events failing since 12:09:57 UTC (HTTP 500); "
        "team failing since 12:09:57 UTC (HTTP 403: wrong team ID)."
    )


def test_retry_after_is_mentioned() -> None:
    df = freshness(4.0, poll="rate limited (429)")
    df.loc[df["job"] == "poll", "retry_after_s"] = 30.0
    banner = freshness_banner(df, NOW, POLL_S)
    assert banner.text.endswith("(rate limited (429)), retry in 30 s.")


def test_long_errors_are_cut() -> None:
    banner = freshness_banner(freshness(4.0, poll="x" * 1000), NOW, POLL_S)
    assert len(banner.text) < 250
    assert "x…)" in banner.text


@pytest.mark.parametrize(
    ("age_s", "level"),
    [(15.0, "ok"), (16.0, "warning"), (60.0, "warning"), (61.0, "error")],
)
def test_late_data_warns_after_3_polls_and_errs_after_12(age_s: float, level: str) -> None:
    banner = freshness_banner(freshness(age_s), NOW, POLL_S)
    assert banner.level == level
    if level != "ok":
        assert "no poll has finished since" in banner.text
        assert "(expected every 5 s)" in banner.text
