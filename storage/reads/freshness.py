"""The collectors' own records: how fresh each job's data is, a job's latest run, and the
documents the jobs saved (template and webhook lists, the backfill queue)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from storage.base import StoreBase
from storage.batches import require_aware


class FreshnessReads(StoreBase):
    """Collector runs and snapshots."""

    def data_freshness(self, now: datetime) -> pd.DataFrame:
        """Per collector job, how fresh its data is at `now`.

        Columns: job, last_run_at (end of its latest run), last_success_at (UTC, NaT if never),
        age_s (seconds from last_success_at to `now`, NaN if never), rows_written (latest
        run), last_error (latest run's error, None if it succeeded), retry_after_s.
        """
        require_aware(now, "now")
        df = self._query(
            """SELECT job, max(ended_at) AS last_run_at,
                max(ended_at) FILTER (WHERE error IS NULL) AS last_success_at,
                arg_max(rows_written, started_at) AS rows_written,
                arg_max_null(error, started_at) AS last_error,
                arg_max_null(retry_after_s, started_at) AS retry_after_s
            FROM collector_runs GROUP BY job ORDER BY job"""
        )
        df.insert(3, "age_s", (pd.Timestamp(now) - df["last_success_at"]).dt.total_seconds())
        return df

    def snapshot(self, kind: str) -> str | None:
        """The latest JSON document saved as `kind`, None when there is none."""
        with self._reading() as cur:
            row = cur.execute("SELECT json_text FROM snapshots WHERE kind = ?", [kind]).fetchone()
        return str(row[0]) if row else None
