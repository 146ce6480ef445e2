"""A real sandboxd per test module (a sample every second), a DuckDB file per test, and
collectors on both with short intervals, stopped at the end of each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collectors.config import CollectorConfig
from collectors.scheduler import Collector
from e2bapi import AsyncE2BClient, E2BClient, RetryPolicy
from sandboxd.testing import RunningSandboxd
from storage import MonitorStore
from tests.collectors.faults import FaultyAPI
from tests.collectors.helpers import FAST
from tests.sandboxd.sandboxd_fixtures import api, new_sandbox, sandboxd, sdk_env, small_sandbox

MakeCollector = Callable[..., Collector]
# The shared sandboxd fixtures.
__all__ = ["api", "new_sandbox", "sandboxd", "sdk_env", "small_sandbox"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitor.duckdb"


@pytest.fixture
def make_collector(sandboxd: RunningSandboxd, db_path: Path) -> Iterator[MakeCollector]:
    """Builds a collector on sandboxd and `db_path` (through `faults` if given); each is
    stopped at the end of the test. Clients make one attempt per call unless told."""
    made: list[Collector] = []

    def make(
        config: CollectorConfig = FAST,
        faults: FaultyAPI | None = None,
        max_attempts: int = 1,
        request_timeout_s: float = 2.0,
    ) -> Collector:
        headers = {"X-API-Key": sandboxd.api_key}
        retry = RetryPolicy(max_attempts=max_attempts, retry_after_cap_s=0)
        http = httpx.Client(
            base_url=sandboxd.api_url,
            headers=headers,
            transport=faults.sync_transport() if faults else None,
        )
        async_http = httpx.AsyncClient(
            base_url=sandboxd.api_url,
            headers=headers,
            transport=faults.async_transport() if faults else None,
        )
        options: dict[str, Any] = {
            "team_id": sandboxd.team_id,
            "retry": retry,
            "request_timeout_s": request_timeout_s,
        }
        collector = Collector(
            MonitorStore.open(db_path),
            E2BClient(http, **options),
            AsyncE2BClient(async_http, **options),
            config,
        )
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.stop()
