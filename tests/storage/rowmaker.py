"""Small builders of the rows the store takes, with defaults, for the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import MonitorStore
from storage.rows import SampleRow, SandboxRow

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
GIB = 1024**3


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def sandbox(sandbox_id: str = "sb-1", seen_s: float = 0, **changes: object) -> SandboxRow:
    fields: dict[str, object] = {
        "sandbox_id": sandbox_id,
        "template_id": "base",
        "alias": None,
        "state": "running",
        "cpu_count": 2,
        "memory_mb": 1024,
        "disk_size_mb": 2048,
        "started_at": T0,
        "end_at": at(3600),
        "metadata": {"owner": "tests"},
        "last_seen_at": at(seen_s),
    }
    fields.update(changes)
    return SandboxRow(**fields)  # type: ignore[arg-type]


def sample(sandbox_id: str = "sb-1", ts_s: float = 0, **changes: object) -> SampleRow:
    fields: dict[str, object] = {
        "sandbox_id": sandbox_id,
        "ts": at(ts_s),
        "cpu_count": 2,
        "cpu_used_pct": 10.0,
        "mem_used_bytes": GIB // 4,
        "mem_total_bytes": GIB,
        "mem_cache_bytes": 1000,
        "disk_used_bytes": GIB,
        "disk_total_bytes": 2 * GIB,
    }
    fields.update(changes)
    return SampleRow(**fields)  # type: ignore[arg-type]


def samples_every_5s(
    sandbox_id: str, from_s: int, until_s: int, **changes: object
) -> list[SampleRow]:
    """Samples of one sandbox at T0 + from_s, +5 s, ... before T0 + until_s."""
    return [sample(sandbox_id, t, **changes) for t in range(from_s, until_s, 5)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitorStore]:
    opened = MonitorStore.open(tmp_path / "data" / "monitor.duckdb")
    yield opened
    opened.close()
