"""The dashboard benchmark's data: a store as a week-old monitor would hold it.

N sandboxes sampled every 5 s for D days (`bench/synthetic.py` `fill_samples`, then `roll_up`),
team samples every 5 s, team maxima, lifecycle events, OOM incidents with the log lines around
them, healthy collector runs and an audit. Built once into `<dir>/dashboard-<N>x<D>d.duckdb`
and reused while its side file (`.json`, written last) names the same sizes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import synthetic
from dashboard.incidents.report import incident_key
from storage import MonitorStore
from storage.rows import (
    CollectorRun,
    EventRow,
    IncidentRow,
    LogLineRow,
    TeamMaxMetric,
    TeamMaxRow,
    TeamMaxWindow,
    TeamSampleRow,
)

INTERVAL_S = 5
FORMAT_VERSION = 1  # bump when the build changes, so old cached files are rebuilt
GIB = 1024**3
TEAM = "team-bench"
JOBS = ("poll", "team", "events", "trouble", "backfill", "slow", "maintenance")
# The sandbox the detail page opens: an OOM kill 5 minutes before "now", with its logs.
DETAIL_INDEX = 1
Say = Callable[[str], None]


@dataclass(frozen=True)
class Dataset:
    """A built store: `now` is what the pages' clock says (the end of the samples, UTC)."""

    path: Path
    sandboxes: int
    days: float
    now: datetime
    detail_id: str
    incident_key: str

    def to_json(self) -> str:
        fields = asdict(self) | {"path": self.path.name, "now": self.now.isoformat()}
        return json.dumps(fields | {"version": FORMAT_VERSION}, indent=2)


def ensure(data_dir: Path, sandboxes: int, days: float, memory_limit: str, say: Say) -> Dataset:
    """The dataset of these sizes in `data_dir`: the cached one, else a fresh build."""
    path = data_dir / f"dashboard-{sandboxes}x{days:g}d.duckdb"
    side = path.with_suffix(".json")
    if path.exists() and side.exists():
        meta = json.loads(side.read_text())
        if meta.get("version") == FORMAT_VERSION:
            say(f"reusing {path} (built for now = {meta['now']})")
            return Dataset(
                path,
                sandboxes,
                days,
                datetime.fromisoformat(meta["now"]),
                meta["detail_id"],
                meta["incident_key"],
            )
    for stale in (side, *data_dir.glob(path.name + "*")):
        stale.unlink(missing_ok=True)  # the side file first: a half build is never reused
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    dataset = Dataset(
        path, sandboxes, days, now, synthetic.sandbox_id(DETAIL_INDEX), _detail_incident_key(now)
    )
    build(dataset, memory_limit, say)
    side.write_text(dataset.to_json())
    return dataset


def _detail_incident_key(now: datetime) -> str:
    at = now - timedelta(minutes=5)
    return incident_key({"sandbox_id": synthetic.sandbox_id(DETAIL_INDEX), "occurred_at": at})


def build(dataset: Dataset, memory_limit: str, say: Say) -> None:
    """Fill `dataset.path` (a new file) with samples, rollups and every other table."""
    started = time.perf_counter()
    end, n = dataset.now, dataset.sandboxes
    start = end - timedelta(days=dataset.days)
    say(f"building {dataset.path}: {n} sandboxes, {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC")

    def progress(chunk_end: datetime, rows: int) -> None:
        if (chunk_end - start) % timedelta(hours=12) == timedelta(0):
            say(f"  {rows / 1e6:6.1f} M samples up to {chunk_end:%m-%d %H:%M}")

    with MonitorStore.open(dataset.path, memory_limit=memory_limit) as store:
        # Seen since the start: first_seen_at is the week's start, last_seen_at is now.
        store.upsert_sandboxes(synthetic.sandbox_rows(n, start, start))
        store.upsert_sandboxes(synthetic.sandbox_rows(n, start, end))
    # Filled over a connection of its own, with the store closed (bench/synthetic.py).
    rows = synthetic.fill_samples(
        dataset.path, n, start, end, INTERVAL_S, timedelta(hours=2), progress, memory_limit
    )
    say(f"filled {rows:,} samples in {time.perf_counter() - started:.0f} s; rolling up")
    with MonitorStore.open(dataset.path, memory_limit=memory_limit) as store:
        minutes = store.roll_up(end)
        say(f"rolled up {minutes:,} minutes; adding team samples, events, incidents, logs")
        store.add_team_samples(team_samples(n, start, end))
        store.add_team_maxima(team_maxima(n, end))
        incidents = incident_rows(n, start, end)
        store.add_incidents(incidents)
        store.add_log_lines(log_rows(incidents, end))
        store.add_events(event_rows(n, start, end))
        for job in JOBS:
            store.record_run(CollectorRun(job, end - timedelta(seconds=3), end, 1, None))
        for k in range(20):
            at = start + (end - start) * (k + 0.5) / 20
            ids = [synthetic.sandbox_id((k * 31) % n)]
            store.record_action(at, "local:bench", "extend", ids, "ok", "extended by 15 min")
    say(f"built in {time.perf_counter() - started:.0f} s")


def team_samples(sandboxes: int, start: datetime, end: datetime) -> list[TeamSampleRow]:
    """One team sample every 5 s: the running count wanders a little under `sandboxes`."""
    count = int((end - start).total_seconds()) // INTERVAL_S
    return [
        TeamSampleRow(
            start + timedelta(seconds=INTERVAL_S * k),
            sandboxes - (k * 7919) % 50,
            ((k * 104729) % 100) / 50.0,
        )
        for k in range(count)
    ]


def team_maxima(sandboxes: int, end: datetime) -> list[TeamMaxRow]:
    peaks: list[tuple[TeamMaxMetric, float]] = [
        ("concurrent_sandboxes", float(sandboxes)),
        ("sandbox_start_rate", 2.0),
    ]
    windows: list[TeamMaxWindow] = ["1h", "24h", "7d"]
    return [
        TeamMaxRow(metric, window, end, end - timedelta(hours=1), value)
        for metric, value in peaks
        for window in windows
    ]


def incident_rows(sandboxes: int, start: datetime, end: datetime) -> list[IncidentRow]:
    """One OOM incident for every fifth sandbox, spread over the range (even ones confirmed),
    plus the detail sandbox's kill 5 minutes before `end`."""
    span = end - start
    rows = [
        _incident(i, start + span * ((i * 0.6180339887) % 1.0), i % 2 == 0)
        for i in range(0, sandboxes, 5)
    ]
    rows.append(_incident(DETAIL_INDEX, end - timedelta(minutes=5), True))
    return rows


def _incident(index: int, at: datetime, confirmed: bool) -> IncidentRow:
    at = at.replace(microsecond=0)
    return IncidentRow(
        sandbox_id=synthetic.sandbox_id(index),
        kind="oom_confirmed" if confirmed else "oom_suspected",
        occurred_at=at,
        detected_at=at + timedelta(seconds=5),
        process="python3" if confirmed else None,
        pid=4242 if confirmed else None,
        mem_used_bytes=GIB * 99 // 100,
        mem_total_bytes=GIB,
        evidence="log line: Out of memory: Killed process 4242 (python3)"
        if confirmed
        else f"memory 99 % of 1024 MiB at {at:%H:%M:%S}, then 25 %",
    )


def log_rows(incidents: list[IncidentRow], end: datetime) -> list[LogLineRow]:
    """40 lines before and 5 after each confirmed kill; the detail sandbox logs every 5 s
    over the last hour too (its page reads the newest 500)."""
    rows: list[LogLineRow] = []
    for incident in incidents:
        if incident.kind != "oom_confirmed":
            continue
        for k in range(-40, 6):
            ts = incident.occurred_at + timedelta(seconds=3 * k)
            message = f"worker step {k + 40}: allocated {256 + 16 * (k + 40)} MiB"
            if k == 0:
                message = "Out of memory: Killed process 4242 (python3)"
            level = "error" if k == 0 else ("warn" if k > -5 else "info")
            rows.append(LogLineRow(incident.sandbox_id, ts, level, message, "{}"))
    detail = synthetic.sandbox_id(DETAIL_INDEX)
    for k in range(720):
        ts = end - timedelta(seconds=INTERVAL_S * (720 - k)) + timedelta(milliseconds=250)
        rows.append(LogLineRow(detail, ts, "info", f"heartbeat {k}", '{"source": "app"}'))
    return rows


def event_rows(sandboxes: int, start: datetime, end: datetime) -> list[EventRow]:
    """Each sandbox's creation, a pause and resume a day for every tenth one, and the detail
    sandbox's pause and resume 10 minutes before `end`."""
    rows = [_event(i, "created", start, 0) for i in range(sandboxes)]
    days = max(1, int((end - start).total_seconds() // 86400))
    for i in range(0, sandboxes, 10):
        for day in range(days):
            paused_at = start + timedelta(days=day, hours=(i % 20) + 1)
            rows.append(_event(i, "paused", paused_at, day))
            rows.append(_event(i, "resumed", paused_at + timedelta(minutes=10), day))
    rows.append(_event(DETAIL_INDEX, "paused", end - timedelta(minutes=10), 99))
    rows.append(_event(DETAIL_INDEX, "resumed", end - timedelta(minutes=9), 99))
    return rows


def _event(index: int, kind: str, ts: datetime, seq: int) -> EventRow:
    sandbox_id = synthetic.sandbox_id(index)
    return EventRow(
        event_id=f"ev-{sandbox_id}-{kind}-{seq}",
        sandbox_id=sandbox_id,
        type=f"sandbox.lifecycle.{kind}",
        ts=ts,
        team_id=TEAM,
        kill_reason=None,
        event_data_json="{}",
    )
