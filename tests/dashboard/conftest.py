"""A monitor as `sandscope run` builds it, for the pages' tests: a real sandboxd, real
collectors writing a real DuckDB file, and the dashboard's runtime installed over both.

Built once per session (about 30 s): a busy sandbox, a `small` one whose memory bomb the
kernel OOM-kills, a paused one and one killed through the API; the collectors keep running
while the pages are tested, as they do in production.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from e2b import CommandExitException, Sandbox

from collectors.scheduler import Collector
from dashboard.actions.runner import ActionRunner
from dashboard.serving import runtime
from dashboard.serving.auth import Logins
from e2bapi import E2BClient
from sandboxd.testing import RunningSandboxd, running_sandboxd
from sandscope.clients import open_async_client, open_client
from sandscope.collect_command import collector_config
from sandscope.settings import load_settings
from storage import MonitorStore
from tests.collectors.helpers import wait_for
from tests.sandboxd.kernel_oom import MEMORY_BOMB, kernel_oom_skip_reason
from tests.sandboxd.sandboxd_fixtures import api, new_sandbox, sandboxd

__all__ = ["api", "new_sandbox", "sandboxd"]  # for test_actions.py

BUSY_LOOP = "python3 -c 'while True: pass'"
# A busy loop keeps one vCPU near 100 %; a share over this says it is running.
BUSY_CPU_PCT = 10.0
SESSION_SANDBOX_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Filled:
    """The running monitor and the sandboxes it watches, by role."""

    server: RunningSandboxd
    store: MonitorStore
    client: E2BClient
    monitor: runtime.Monitor
    busy_id: str
    oom_id: str
    paused_id: str
    killed_id: str


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    if (reason := kernel_oom_skip_reason()) is not None:
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp("sandboxd")
    with running_sandboxd(
        data_dir, SANDBOXD_SAMPLE_INTERVAL_S="1", SANDBOXD_MAX_SANDBOXES="8"
    ) as server:
        settings = load_settings(
            {
                "E2B_API_KEY": server.api_key,
                "E2B_API_URL": server.api_url,
                "E2B_TEAM_ID": server.team_id,
                "SANDSCOPE_DATA_DIR": str(tmp_path_factory.mktemp("monitor")),
                "SANDSCOPE_POLL_INTERVAL_S": "1",
                "SANDSCOPE_EVENTS_INTERVAL_S": "1",
                "SANDSCOPE_SLOW_INTERVAL_S": "2",
                "SANDSCOPE_MAINTENANCE_INTERVAL_S": "2",
            },
            secrets_file=None,
        )
        store = MonitorStore.open(settings.db_path)
        collector = Collector(
            store, open_client(settings), open_async_client(settings), collector_config(settings)
        )
        actions_client = open_client(settings)
        monitor = runtime.Monitor(
            store=store,
            actions=ActionRunner(actions_client, store),
            logins=Logins(users={}),
            poll_interval_s=settings.poll_interval_s,
            target_description=f"sandboxd at {server.api_url} (tests)",
            concurrency_limit=8,
        )
        collector.start()
        runtime.install(monitor)
        try:
            yield _make_sandboxes(server, store, actions_client, monitor)
        finally:
            runtime.install(None)
            collector.stop()
            actions_client.close()


def _make_sandboxes(
    server: RunningSandboxd, store: MonitorStore, client: E2BClient, monitor: runtime.Monitor
) -> Filled:
    connection: dict[str, Any] = {
        "api_key": server.api_key,
        "api_url": server.api_url,
        "sandbox_url": server.envd_url,
    }
    # The session's sandboxes outlive every test that uses them (the whole dashboard suite,
    # browser tests and template builds included, runs well past 10 minutes on 2 cores);
    # sandboxd kills them when the session stops it.
    busy = Sandbox.create(
        timeout=SESSION_SANDBOX_TIMEOUT_S, metadata={"role": "busy"}, **connection
    )
    # timeout=0: the SDK's default command timeout (60 s) is a deadline envd kills the
    # command at, and the pages are read long after the fixture starts the loop.
    busy.commands.run(BUSY_LOOP, background=True, timeout=0)
    oom = Sandbox.create(
        template="small", timeout=SESSION_SANDBOX_TIMEOUT_S, metadata={"role": "oom"}, **connection
    )
    with contextlib.suppress(CommandExitException):  # the kernel kills it: exit 137
        oom.commands.run(MEMORY_BOMB, timeout=60)
    paused = Sandbox.create(
        timeout=SESSION_SANDBOX_TIMEOUT_S, metadata={"role": "paused"}, **connection
    )
    killed = Sandbox.create(
        timeout=SESSION_SANDBOX_TIMEOUT_S, metadata={"role": "killed"}, **connection
    )
    ids = [busy.sandbox_id, oom.sandbox_id, paused.sandbox_id, killed.sandbox_id]
    wait_for(lambda: set(ids) <= store.live_sandbox_ids(), 15, "the sandboxes listed")
    wait_for(lambda: len(store.last_sample_at(ids)) == 4, 15, "samples of every sandbox")
    # test_pages checks the busy loop's CPU: a first sample may predate the loop's start.
    wait_for(lambda: _cpu_pct(store, busy.sandbox_id) > BUSY_CPU_PCT, 15, "the busy loop's CPU")
    Sandbox.pause(paused.sandbox_id, **connection)
    Sandbox.kill(killed.sandbox_id, **connection)
    wait_for(lambda: not store.sandbox_incidents(oom.sandbox_id).empty, 30, "the OOM incident")
    wait_for(lambda: killed.sandbox_id not in store.live_sandbox_ids(), 15, "the kill seen")
    wait_for(lambda: _state(store, paused.sandbox_id) == "paused", 15, "the pause seen")
    return Filled(
        server=server,
        store=store,
        client=client,
        monitor=monitor,
        busy_id=busy.sandbox_id,
        oom_id=oom.sandbox_id,
        paused_id=paused.sandbox_id,
        killed_id=killed.sandbox_id,
    )


def _cpu_pct(store: MonitorStore, sandbox_id: str) -> float:
    """The sandbox's latest CPU share as the triage table reads it; 0 when not sampled."""
    rows = store.triage_rows(datetime.now(UTC))
    cpu = rows.loc[rows["sandbox_id"] == sandbox_id, "cpu_used_pct"]
    return 0.0 if cpu.empty or pd.isna(cpu.iloc[0]) else float(cpu.iloc[0])


def _state(store: MonitorStore, sandbox_id: str) -> str | None:
    row = store.sandbox_record(sandbox_id)
    return None if row is None else row.state


@pytest.fixture
def installed(filled: Filled) -> Iterator[Filled]:
    """The session's monitor, (re)installed for one test."""
    runtime.install(filled.monitor)
    yield filled
    runtime.install(filled.monitor)


def replace_monitor(filled: Filled, **changes: object) -> runtime.Monitor:
    """The session's monitor with some fields changed, installed (restored by `installed`)."""
    monitor = dataclasses.replace(filled.monitor, **changes)  # type: ignore[arg-type]
    runtime.install(monitor)
    return monitor
