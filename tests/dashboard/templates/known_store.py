"""A store with known samples for the Templates page's tests: template "small" (512 MiB)
with five sandboxes peaking at 100..500 MiB and one confirmed OOM, metadata key `agent`."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from pathlib import Path

from storage import MonitorStore
from storage.rows import IncidentRow, SampleRow, SandboxRow, TemplateRow

MIB = 2**20
TEMPLATE = "small"
# The p95 of peaks 100..500 MiB (quantile_cont), and what the page makes of them.
P95_TEXT = "480 MiB"
HEADROOM_TEXT = "32 MiB"
# p99 496 MiB + 25 % = 620 MiB, and the OOM asks for 512 + 25 % = 640 MiB: 1024 MiB.
SUGGESTED_TEXT = "1024 MiB"


def fill(path: Path, now: datetime) -> None:
    """Write the known sandboxes (started an hour before `now`) into a new store at `path`."""
    started = now - timedelta(hours=1)
    boxes, samples = [], []
    for n in range(1, 6):
        sandbox_id = f"known{n}"
        boxes.append(
            SandboxRow(
                sandbox_id,
                TEMPLATE,
                None,
                "running",
                1,
                512,
                1024,
                started,
                now + timedelta(hours=1),
                {"agent": "odd" if n % 2 else "even"},
                now,
            )
        )
        for step, share in enumerate((0.5, 1.0, 0.9)):
            samples.append(
                SampleRow(
                    sandbox_id,
                    started + timedelta(seconds=10 + 5 * step),
                    1,
                    10.0 * n,
                    int(n * 100 * MIB * share),
                    512 * MIB,
                    0,
                    100 * MIB,
                    1024 * MIB,
                )
            )
    with contextlib.closing(MonitorStore.open(path)) as store:
        store.upsert_sandboxes(boxes)
        store.add_samples(samples)
        store.add_incidents(
            [
                IncidentRow(
                    "known5",
                    "oom_confirmed",
                    started + timedelta(minutes=1),
                    started + timedelta(minutes=1),
                    "python",
                    7,
                    500 * MIB,
                    512 * MIB,
                    "log",
                )
            ]
        )


def catalog_row(
    template_id: str, names: list[str], now: datetime, **changes: object
) -> TemplateRow:
    """A template as the catalog holds it, listed at `now`."""
    fields: dict[str, object] = {
        "template_id": template_id,
        "build_id": f"{template_id}-build-1",
        "names": names,
        "aliases": names,
        "cpu_count": 1,
        "memory_mb": 512,
        "disk_size_mb": 1024,
        "public": False,
        "build_count": 2,
        "build_status": "ready",
        "spawn_count": 5,
        "last_spawned_at": now - timedelta(minutes=5),
        "created_at": now - timedelta(days=2),
        "updated_at": now - timedelta(days=1),
        "envd_version": "0.2.0",
        "listed_at": now,
    }
    fields.update(changes)
    return TemplateRow(**fields)  # type: ignore[arg-type]


def add_catalog(path: Path, now: datetime, *extra: TemplateRow) -> None:
    """The catalog: template "small" (1 vCPU, 512 MiB, as its sandboxes) and `extra`."""
    with contextlib.closing(MonitorStore.open(path)) as store:
        store.replace_templates([catalog_row(TEMPLATE, [TEMPLATE], now), *extra])
