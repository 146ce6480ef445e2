"""What every page shares with the monitor process: the store, the actions, the clock.

Pages never open the database or start a scheduler (both are process-wide); the process
that serves the app builds one `Monitor` and `install`s it before the first page runs.
Tests install their own, over a real store file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dashboard.actions.runner import ActionRunner
from dashboard.serving.auth import Logins
from dashboard.templates.rates import CostRates
from storage import MonitorStore


class MonitorNotRunningError(RuntimeError):
    """A page ran outside the monitor process (for example `streamlit run` by hand)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Monitor:
    """The process-wide resources pages read from and act through.

    `actions` is None in read-only mode: pages then show no action at all.
    `concurrency_limit` is the team's limit on running sandboxes, when known.
    """

    store: MonitorStore
    actions: ActionRunner | None
    logins: Logins
    poll_interval_s: float
    target_description: str
    concurrency_limit: int | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    # The Templates page's cost estimate; None shows usage without a cost.
    cost_rates: CostRates | None = None


_lock = threading.Lock()
_installed: Monitor | None = None


def install(monitor: Monitor | None) -> None:
    """Make `monitor` the one every page uses (None removes it)."""
    global _installed
    with _lock:
        _installed = monitor


def current() -> Monitor:
    """The installed monitor; raises MonitorNotRunningError when there is none."""
    with _lock:
        monitor = _installed
    if monitor is None:
        raise MonitorNotRunningError(
            "the dashboard runs inside the monitor: start it with `make run` or "
            "`sandscope run`, not with `streamlit run`"
        )
    return monitor
