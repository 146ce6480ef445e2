"""`sandscope run` as `make run` starts it: sandboxd, the collectors and the dashboard in one
process on free ports and temporary files; Ctrl-C stops everything and leaves nothing behind.

Each process runs in a temporary directory (no developer's `.streamlit/secrets.toml` and no
E2B_*, SANDSCOPE_* or SANDBOXD_* variable leaks in).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandscope.run_command import EXIT_SETTINGS, RunOptions, run_monitor
from sandscope.settings import load_settings
from storage import MonitorStore

REPOSITORY = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
URL_LINE = re.compile(r"^sandscope dashboard: (http://\S+)$")
SANDBOXD_LINE = re.compile(r"started sandboxd at (http://\S+) ")
CGROUP_PREFIX = f"sandscope-run-test-{os.getpid()}-"


@pytest.fixture(scope="module", autouse=True)
def no_cgroup_left_behind() -> Iterator[None]:
    """Even after a failed test: the cgroup parents of this module's sandboxd, once empty."""
    yield
    for path in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PREFIX}*"):
        with contextlib.suppress(OSError):
            path.rmdir()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_", "SANDBOXD_"))
    }
    env.update(
        SANDSCOPE_DATA_DIR=str(home / "data"),
        SANDSCOPE_SANDBOXD_DATA_DIR=str(home / "sandboxd"),
        SANDSCOPE_PORT=str(port),
        SANDSCOPE_POLL_INTERVAL_S="0.5",
        SANDSCOPE_MAX_ATTEMPTS="1",
        SANDBOXD_SAMPLE_INTERVAL_S="0.5",
        SANDBOXD_CGROUP_PARENT=f"{CGROUP_PREFIX}{port}",
    )
    env.update(extra)
    return env


class Run:
    """A `sandscope run` process; threads collect its stdout and stderr lines."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.env = env
        self.out: list[str] = []
        self.err: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandscope", "run", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern[str], lines: list[str] | None = None) -> re.Match[str]:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            for line in list(self.out if lines is None else lines):
                if match := pattern.search(line):
                    return match
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.show()}"
            assert time.monotonic() < deadline, f"no line like {pattern.pattern}: {self.show()}"
            time.sleep(0.05)

    def stop(self, signum: int | None = signal.SIGINT) -> tuple[int, float]:
        """Send `signum` (None: none, it exits by itself); (exit code, seconds to exit)."""
        started = time.monotonic()
        if signum is not None and self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for reader in self._readers:
                reader.join(5)
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()
        return code, time.monotonic() - started

    def show(self) -> str:
        return "\nstdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)


@dataclass
class Monitor:
    run: Run
    url: str
    sandboxd_url: str
    home: Path


def sandboxd_pids(data_dir: Path) -> list[int]:
    """sandboxd processes whose environment names `data_dir`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"sandboxd" in cmdline and f"SANDBOXD_DATA_DIR={data_dir}".encode() in environ:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    home = tmp_path_factory.mktemp("run")
    run = Run(run_env(home, free_port()), home, "--no-demo")
    try:
        url = run.wait_for(URL_LINE).group(1)
        sandboxd_url = run.wait_for(SANDBOXD_LINE).group(1)
        yield Monitor(run, url, sandboxd_url, home)
    finally:
        run.stop()


def sandboxd_client(monitor: Monitor) -> httpx.Client:
    key = (monitor.home / "sandboxd" / "api_key").read_text().strip()
    return httpx.Client(base_url=monitor.sandboxd_url, headers={"X-API-Key": key}, timeout=30)


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
    run = Run(env, tmp_path)  # the demo is on by default, but not for E2B
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
    with sandboxd_client(monitor) as api:
        sandbox_id = api.post("/sandboxes", json={"templateID": "small"}).json()["sandboxID"]
        deadline = time.monotonic() + READY_TIMEOUT_S
        # Two samples at 0.5 s, while the collector polls every 0.5 s.
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
        run = Run(env, tmp_path, "--no-demo")
        code, _ = run.stop(None)
    assert code == 1, run.show()
    assert any("the port is in use" in line for line in run.err), run.show()
    assert "stopping: sandboxd stopped (its sandboxes killed)" in run.out
    assert sandboxd_pids(tmp_path / "sandboxd") == []


def test_a_signal_while_starting_stops_what_has_started(tmp_path: Path) -> None:
    run = Run(run_env(tmp_path, free_port()), tmp_path, "--no-demo")
    run.wait_for(SANDBOXD_LINE)

    code, _ = run.stop(signal.SIGINT)  # the dashboard may or may not be up yet

    assert code == 0, run.show()
    assert run.out[-1] == "stopped"
    assert "stopping: sandboxd stopped (its sandboxes killed)" in run.out
    assert "Traceback" not in "\n".join(run.err)
    assert sandboxd_pids(tmp_path / "sandboxd") == []
