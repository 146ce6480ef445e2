"""The collectors' own records: freshness per job and saved snapshots."""

from __future__ import annotations

import pandas as pd

from storage import MonitorStore
from storage.rows import CollectorRun
from tests.storage.rowmaker import T0, at


def test_data_freshness_per_job(store: MonitorStore) -> None:
    store.record_run(CollectorRun("list", at(0), at(1), 10, None))
    store.record_run(CollectorRun("list", at(5), at(6), 0, "HTTP 429", retry_after_s=30.0))
    store.record_run(CollectorRun("events", at(0), at(2), 3, "timeout"))

    got = store.data_freshness(at(61)).set_index("job")
    assert list(got.columns) == [
        "last_run_at",
        "last_success_at",
        "age_s",
        "rows_written",
        "last_error",
        "retry_after_s",
    ]
    assert got.loc["list", "last_run_at"] == at(6)
    assert got.loc["list", "last_success_at"] == at(1)
    assert got.loc["list", "age_s"] == 60.0
    assert got.loc["list", "last_error"] == "HTTP 429"
    assert got.loc["list", "retry_after_s"] == 30.0
    assert pd.isna(got.loc["events", "last_success_at"])
    assert pd.isna(got.loc["events", "age_s"])


def test_an_empty_store_has_no_runs_events_or_snapshots(store: MonitorStore) -> None:
    assert store.data_freshness(T0).empty
    assert store.snapshot("templates") is None
