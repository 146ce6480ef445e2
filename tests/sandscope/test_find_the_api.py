"""Commands started beside a running sandboxd find it, whatever ports it took: `status`,
`collect --once` and `api` as processes of their own, with no E2B_* setting, next to a
`sandscope run` (which started sandboxd on free ports) and next to a `sandscope sandboxd`.

Every process runs in a temporary directory with no E2B_*, SANDSCOPE_* or SANDBOXD_* variable
of the caller's; each is waited for by what it prints, and stopped (its group killed if it
hangs) at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandscope.running_monitor import (
    CGROUP_PREFIX,
    Monitor,
    free_port,
    monitor_env,
    remove_empty_cgroups,
    running_monitor,
)
from tests.sandscope.sandscope_process import SandscopeProcess, run_to_end

SANDBOXD_READY = re.compile(r"^sandboxd ready: api (http://\S+) envd (http://\S+)$")


@pytest.fixture(scope="module", autouse=True)
def no_cgroup_left_behind() -> Iterator[None]:
    """Even after a failed test: the cgroup parents of every sandboxd here, once empty."""
    yield
    remove_empty_cgroups(f"{CGROUP_PREFIX}*")


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    home = tmp_path_factory.mktemp("run")
    with running_monitor(home, monitor_env(home, free_port()), "--no-demo") as running:
        yield running


def beside(monitor: Monitor, **extra: str) -> dict[str, str]:
    """The environment of a command started beside `monitor`: its settings (the same sandboxd
    data directory, no E2B_*), its own DuckDB file (the monitor holds its own), then `extra`."""
    return {**monitor.run.env, "SANDSCOPE_DB": str(monitor.home / "beside.duckdb"), **extra}


def test_status_finds_the_sandboxd_run_started_on_free_ports(monitor: Monitor) -> None:
    endpoints_file = monitor.home / "sandboxd" / "endpoints.json"

    status = run_to_end(beside(monitor), monitor.home, "status")

    assert status.returncode == 0, status.stdout + status.stderr
    assert not monitor.sandboxd_url.endswith(":3000")  # a free port, not sandboxd's default
    assert (
        f"API: the local sandboxd at {monitor.sandboxd_url} (found through {endpoints_file})"
        in status.stdout
    )
    assert f"API {monitor.sandboxd_url}: healthy (200 " in status.stdout


def test_collect_once_collects_from_it(monitor: Monitor) -> None:
    collect = run_to_end(beside(monitor), monitor.home, "collect", "--once")

    assert collect.returncode == 0, collect.stdout + collect.stderr  # every job succeeded
    lines = collect.stdout.splitlines()
    assert lines[0].startswith(f"collecting from the local sandboxd at {monitor.sandboxd_url} (")
    assert re.search(r"^\S+ poll +ok", collect.stdout, re.MULTILINE)
    assert lines[-1] == "done"


def test_api_calls_it_with_its_key(monitor: Monitor) -> None:
    with monitor.sandboxd_api() as straight:
        expected = straight.get("/v2/sandboxes").json()

    listed = run_to_end(beside(monitor), monitor.home, "api", "list-sandboxes")

    assert listed.returncode == 0, listed.stderr  # sandboxd refuses a call without its key
    assert json.loads(listed.stdout) == expected


def test_commands_find_a_sandscope_sandboxd_through_sandboxd_s_own_data_dir(
    tmp_path: Path,
) -> None:
    """SANDBOXD_DATA_DIR alone, as `sandscope sandboxd` reads it, is where the others look
    too; once it stopped, its endpoints file is stale and `status` says so."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_", "SANDBOXD_"))
    }
    env.update(
        SANDBOXD_DATA_DIR=str(tmp_path / "sandboxd"),
        SANDBOXD_API_PORT="0",
        SANDBOXD_ENVD_PORT="0",
        SANDBOXD_CGROUP_PARENT=f"{CGROUP_PREFIX}sandboxd",
        SANDSCOPE_DATA_DIR=str(tmp_path / "data"),
    )
    sandboxd = SandscopeProcess(env, tmp_path, "sandboxd")
    try:
        api_url = sandboxd.wait_for(SANDBOXD_READY).group(1)
        status = run_to_end(env, tmp_path, "status")
    finally:
        code, _ = sandboxd.stop(signal.SIGTERM)
    stale = run_to_end(env, tmp_path, "status")

    assert status.returncode == 0, status.stdout + status.stderr
    assert f"API: the local sandboxd at {api_url} (found through " in status.stdout
    assert f"API {api_url}: healthy (200 " in status.stdout
    assert code == 0, sandboxd.show()
    assert stale.returncode == 2
    assert f"names {api_url}, where nothing answers" in stale.stdout
