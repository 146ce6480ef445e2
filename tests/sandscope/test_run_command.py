"""`sandscope run` as `make run` starts it: sandboxd, the collectors and the dashboard in one
process on free ports and temporary files; Ctrl-C stops everything and leaves nothing behind.

Each process runs in a temporary directory (no developer's `.streamlit/secrets.toml` and no
E2B_*, SANDSCOPE_* or SANDBOXD_* variable leaks in).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandscope.run_command import EXIT_SETTINGS, RunOptions, run_monitor
from sandscope.settings import load_settings
from storage import MonitorStore
from tests.sandscope.running_monitor import (
    CGROUP_PREFIX,
    SANDBOXD_LINE,
    URL_LINE,
    Monitor,
    free_port,
    monitor_env,
    remove_empty_cgroups,
    running_monitor,
    sandboxd_pids,
)
from tests.sandscope.sandscope_process import READY_TIMEOUT_S, SandscopeProcess

# Collection every 0.5 s, a sample every second, one attempt a poll.
FAST = {
    "SANDSCOPE_POLL_INTERVAL_S": "0.5",
    "SANDSCOPE_MAX_ATTEMPTS": "1",
    "SANDBOXD_SAMPLE_INTERVAL_S": "1",
}


@pytest.fixture(scope="module", autouse=True)
def no_cgroup_left_behind() -> Iterator[None]:
    """Even after a failed test: the cgroup parents of every `sandscope run` here, once empty."""
    yield
    remove_empty_cgroups(f"{CGROUP_PREFIX}*")


def run_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    return monitor_env(home, port, **{**FAST, **extra})


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    home = tmp_path_factory.mktemp("run")
    with running_monitor(home, run_env(home, free_port()), "--no-demo") as running:
        yield running


def test_it_serves_the_dashboard_at_the_printed_url(monitor: Monitor) -> None:
    port = monitor.run.env["SANDSCOPE_PORT"]
    assert monitor.url == f"http://127.0.0.1:{port}"
    assert httpx.get(f"{monitor.url}/_stcore/health", timeout=10).text == "ok"
    assert "<html" in httpx.get(monitor.url, timeout=10).text.lower()
    assert any(line.startswith("Watching the local sandboxd at") for line in monitor.run.out)
    assert not any(line.startswith("demo:") for line in monitor.run.out)  # --no-demo


def test_a_second_run_on_the_same_store_is_refused_naming_the_first(monitor: Monitor) -> None:
    env = {**monitor.run.env, "SANDSCOPE_PORT": str(free_port())}
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "sandscope", "run", "--no-demo"],
        cwd=monitor.home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stderr
    assert f"is in use by process {monitor.run.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert time.monotonic() - started < 20
    # The store is opened first: no second sandboxd touched the first one's data.
    sandboxd_log = (monitor.home / "sandboxd" / "sandboxd.log").read_text()
    assert sandboxd_log.count("started by sandscope run") == 1


def test_with_a_key_it_watches_that_api_and_starts_no_sandboxd(
    monitor: Monitor, tmp_path: Path
) -> None:
    key = (monitor.home / "sandboxd" / "api_key").read_text().strip()
    env = run_env(tmp_path, free_port(), E2B_API_URL=monitor.sandboxd_url, E2B_API_KEY=key)
    run = SandscopeProcess(env, tmp_path, "run")  # the demo is on by default, but not for E2B
    try:
        run.wait_for(URL_LINE)
        db_path = tmp_path / "data" / "sandscope.duckdb"
        assert (
            run.out[0]
            == f"Watching the E2B API at {monitor.sandboxd_url}, into {db_path} every 0.5 s"
        )
    finally:
        code, _ = run.stop(signal.SIGTERM)
    assert code == 0, run.show()
    assert not (tmp_path / "sandboxd").exists()
    assert not any(line.startswith("demo:") for line in run.out)


def test_ctrl_c_stops_everything_with_the_samples_stored(monitor: Monitor) -> None:
    """Last in this file: it stops the module's monitor."""
    with monitor.sandboxd_api() as api:
        sandbox_id = api.post("/sandboxes", json={"templateID": "small"}).json()["sandboxID"]
        deadline = time.monotonic() + READY_TIMEOUT_S
        # Two samples a second apart, while the collector polls every 0.5 s.
        while len(api.get(f"/sandboxes/{sandbox_id}/metrics").json()) < 2:
            assert time.monotonic() < deadline, "sandboxd sampled nothing"
            time.sleep(0.1)
        assert api.delete(f"/sandboxes/{sandbox_id}").status_code == 204
    monitor.run.wait_for(re.compile(f"sandbox {sandbox_id} ended"), monitor.run.err)
    pids = sandboxd_pids(monitor.home / "sandboxd")
    assert len(pids) == 1

    code, took_s = monitor.run.stop(signal.SIGINT)

    assert code == 0, monitor.run.show()
    assert took_s < 20
    assert monitor.run.out[-4:] == [
        "stopping: dashboard stopped",
        "stopping: collector stopped, store closed",
        "stopping: sandboxd stopped (its sandboxes killed)",
        "stopped",
    ], monitor.run.show()
    assert "Traceback" not in "\n".join(monitor.run.err)
    assert sandboxd_pids(monitor.home / "sandboxd") == []
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{monitor.run.env['SANDBOXD_CGROUP_PARENT']}"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{monitor.url}/_stcore/health", timeout=2)
    with MonitorStore.open(monitor.home / "data" / "sandscope.duckdb") as store:
        ended = store.sandboxes(include_ended=True)
        samples = store.last_sample_at([sandbox_id])
    assert sandbox_id in set(ended["sandbox_id"])
    assert sandbox_id in samples


def test_a_non_loopback_address_without_logins_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = run_env(tmp_path, free_port(), SANDSCOPE_ADDRESS="0.0.0.0")
    settings = load_settings(env, secrets_file=None)
    options = RunOptions(secrets_file=tmp_path / "absent-secrets.toml")

    code = run_monitor(settings, sys.stdout, sys.stderr, options)

    assert code == EXIT_SETTINGS
    assert "refuses to listen on 0.0.0.0 without logins" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "sandboxd").exists()


def test_a_port_in_use_is_reported_and_everything_started_is_stopped(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = run_env(tmp_path, taken.getsockname()[1])
        run = SandscopeProcess(env, tmp_path, "run", "--no-demo")
        code, _ = run.stop(None)
    assert code == 1, run.show()
    assert any("the port is in use" in line for line in run.err), run.show()
    assert "stopping: sandboxd stopped (its sandboxes killed)" in run.out
    assert sandboxd_pids(tmp_path / "sandboxd") == []


def test_a_signal_while_starting_stops_what_has_started(tmp_path: Path) -> None:
    run = SandscopeProcess(run_env(tmp_path, free_port()), tmp_path, "run", "--no-demo")
    run.wait_for(SANDBOXD_LINE)

    code, _ = run.stop(signal.SIGINT)  # the dashboard may or may not be up yet

    assert code == 0, run.show()
    assert run.out[-1] == "stopped"
    assert "stopping: sandboxd stopped (its sandboxes killed)" in run.out
    assert "Traceback" not in "\n".join(run.err)
    assert sandboxd_pids(tmp_path / "sandboxd") == []
