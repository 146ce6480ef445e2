"""How often each job runs and how much work one run may do. Plain data, no settings I/O:
`sandscope` builds it from its settings, tests and benchmarks build it by hand.

The defaults here are declared once for the whole project: `sandscope.settings` takes the
defaults of its interval and retention settings from this class."""

from __future__ import annotations

from dataclasses import dataclass

# E2B samples a sandbox's metrics every 5 s: polling faster reads the same sample again.
# The jobs that follow up on the poll's findings (team, trouble, backfill) keep its pace.
_POLL_INTERVAL_S = 5.0


@dataclass(frozen=True, kw_only=True)
class CollectorConfig:
    """Intervals and limits of the collector jobs. Durations are seconds unless named."""

    poll_interval_s: float = _POLL_INTERVAL_S
    team_interval_s: float = _POLL_INTERVAL_S
    events_interval_s: float = 10.0
    trouble_interval_s: float = _POLL_INTERVAL_S
    backfill_interval_s: float = _POLL_INTERVAL_S
    slow_interval_s: float = 60.0
    maintenance_interval_s: float = 60.0

    raw_retention_days: float = 7.0
    rollup_retention_days: float = 90.0

    # Each team-metrics poll re-reads this much history; the store keeps each bucket once.
    team_window_s: float = 60.0
    # On a first start with an empty store, events are read back this far (E2B keeps ~7 d).
    events_first_lookback_s: float = 24 * 3600.0
    # A new sample more than this after the sandbox's last stored one opens a gap to
    # backfill. Jitter between E2B's 5 s sampling and a 5 s poll alone can skip one sample
    # (a 10 s step), so the default waits for two missed samples.
    backfill_gap_s: float = 12.0
    backfill_requests_per_run: int = 200
    # Sandboxes whose new error/warn/info lines one trouble run reads (round robin), and
    # how far back a sandbox's first read goes.
    log_sweep_per_run: int = 100
    log_sweep_lookback_s: float = 300.0
    # Trouble signs handled per run, and the log lines kept before each (the API's page).
    trouble_per_run: int = 20
    # Of those, the share history gets (older ends, see `collectors.work.TroubleWatch`):
    # enough that a day of ends drains in hours, few enough (each sign costs two API calls)
    # that a run stays short and the next log sweep is not held up.
    trouble_history_per_run: int = 5
    log_lines_kept: int = 200
    # The samples and log lines looked at around a sign of trouble.
    trouble_before_s: float = 120.0
    trouble_after_s: float = 30.0

    # A failing job waits interval x 2^(failures-1), at most this long (or Retry-After).
    max_backoff_s: float = 60.0

    def interval_s(self, job: str) -> float:
        """The interval of the job named `job` (see `collectors.scheduler.JOBS`)."""
        value = getattr(self, f"{job}_interval_s")
        assert isinstance(value, float | int), job
        return float(value)
