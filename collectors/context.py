"""What every job gets: the clients, the store, the clock, the shared work lists, and a
tally of the rows this run has written (kept even when the run fails half way)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, TypeVar

from collectors.config import CollectorConfig
from collectors.work import BackfillQueue, LogSweep, TroubleWatch
from e2bapi import E2BClient
from e2bapi.exchange import Exchange
from storage.store import MonitorStore

T = TypeVar("T")
Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware in UTC."""


class ActionRunner(Protocol):
    """Anything that drives an e2bapi action to its result (`E2BClient`, `AsyncActions`)."""

    def run(self, action: Exchange[T]) -> T: ...


class Tally:
    """Rows written by one run so far."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, rows: int) -> int:
        """Count `rows` more; returns `rows`."""
        self.rows += rows
        return rows


@dataclass(frozen=True)
class JobContext:
    """One run's view of the collector. `client` makes single calls; `batch` runs the
    actions whose calls go out concurrently (the batch metrics of every sandbox)."""

    client: E2BClient
    batch: ActionRunner
    store: MonitorStore
    clock: Clock
    config: CollectorConfig
    backfill: BackfillQueue
    watch: TroubleWatch
    sweep: LogSweep
    stopping: threading.Event
    tally: Tally = field(default_factory=Tally)

    def for_run(self) -> JobContext:
        """The same context with a fresh tally, for one run."""
        return replace(self, tally=Tally())

    def wrote(self, rows: int) -> int:
        """Count rows the store reports written; returns `rows`."""
        return self.tally.add(rows)
