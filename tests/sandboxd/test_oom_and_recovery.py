"""Kernel OOM kills become log lines and counts; a crashed sandboxd leaves nothing behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest
from e2b import CommandExitException, Sandbox

from sandboxd.isolation.cgroups import CGROUP_ROOT
from sandboxd.testing import running_sandboxd
from tests.sandboxd.kernel_oom import MEMORY_BOMB, needs_kernel_oom


@needs_kernel_oom
def test_a_memory_bomb_is_oom_killed_recorded_and_the_sandbox_lives_on(
    small_sandbox: Sandbox, api: httpx.Client
) -> None:
    with pytest.raises(CommandExitException) as killed:
        small_sandbox.commands.run(MEMORY_BOMB, timeout=60)
    assert "killed" in (killed.value.error or "")
    sandbox_id = small_sandbox.sandbox_id
    deadline = time.monotonic() + 10
    oom_lines: list[dict[str, object]] = []
    while not oom_lines and time.monotonic() < deadline:
        logs = api.get(f"/v2/sandboxes/{sandbox_id}/logs", params={"level": "error"}).json()
        oom_lines = [line for line in logs["logs"] if "OOM kill" in str(line["message"])]
        time.sleep(0.1)
    assert oom_lines, "no OOM kill in the sandbox's logs"
    line = oom_lines[0]
    assert "python3" in str(line["message"]) and "128 MiB" in str(line["message"])
    assert line["fields"]["pid"]  # type: ignore[index]
    assert api.get(f"/sandboxes/{sandbox_id}").json()["oomKills"] >= 1
    assert small_sandbox.commands.run("echo alive").stdout.strip() == "alive"


def _cgroup_dirs(parent: str) -> list[Path]:
    return [
        child
        for hierarchy in ("memory", "cpu", "cpuacct", "pids", "unified")
        for child in (CGROUP_ROOT / hierarchy / parent).glob("*")
        if child.is_dir()
    ]


def _box_mounts(parent: str) -> list[str]:
    """Mounts of box disks under this sandboxd's runtime dir (named opaquely, not by id)."""
    prefix = f"/run/sandboxd/{parent}/"
    return [
        line
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]


@needs_kernel_oom
def test_a_start_after_a_crash_removes_what_the_dead_run_left(tmp_path: Path) -> None:
    parent = f"sandboxd-crash-{os.getpid()}"
    with running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as crashed:
        headers = {"X-API-Key": crashed.api_key}
        ids = [
            httpx.post(
                f"{crashed.api_url}/sandboxes", json={"templateID": "base"}, headers=headers
            ).json()["sandboxID"]
            for _ in range(2)
        ]
        # Per box: its disk and the overlays of its /usr, /etc, /var on it.
        assert _cgroup_dirs(parent) and len(_box_mounts(parent)) == 2 * 4
        os.kill(crashed.process.pid, signal.SIGKILL)
        crashed.process.wait(10)
    with running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as restarted:
        assert _cgroup_dirs(parent) == []
        assert _box_mounts(parent) == []
        headers = {"X-API-Key": restarted.api_key}
        for sandbox_id in ids:
            assert (
                httpx.get(
                    f"{restarted.api_url}/sandboxes/{sandbox_id}", headers=headers
                ).status_code
                == 404
            )
            events = httpx.get(
                f"{restarted.api_url}/events/sandboxes/{sandbox_id}", headers=headers
            ).json()
            assert events[0]["type"] == "sandbox.lifecycle.killed"
            assert events[0]["eventData"]["kill_reason"] == "error"


@needs_kernel_oom
def test_shutdown_kills_every_sandbox_and_records_why(tmp_path: Path) -> None:
    parent = f"sandboxd-stop-{os.getpid()}"
    with running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as first:
        headers = {"X-API-Key": first.api_key}
        sandbox_id = httpx.post(
            f"{first.api_url}/sandboxes", json={"templateID": "base"}, headers=headers
        ).json()["sandboxID"]
    assert _cgroup_dirs(parent) == [] and _box_mounts(parent) == []
    with running_sandboxd(tmp_path, SANDBOXD_CGROUP_PARENT=parent) as second:
        events = httpx.get(
            f"{second.api_url}/events/sandboxes/{sandbox_id}",
            headers={"X-API-Key": second.api_key},
        ).json()
        assert events[0]["eventData"]["kill_reason"] == "sandboxd shutdown"


@needs_kernel_oom
def test_a_sandbox_whose_main_process_dies_ends_with_reason_error(
    sdk_env: None, api: httpx.Client
) -> None:
    sandbox = Sandbox.create(timeout=60)
    # The agent is the sandbox's main process and its PID 1, which box code cannot signal
    # (tests/security/test_agent_channel.py): here it dies from outside, as a crash would.
    # A sleep of an odd length marks its child on the host; the marked process's parent is it.
    sandbox.commands.run("sleep 4242.25", background=True)
    agent_pid = _wait_for_parent_of(["sleep", "4242.25"])
    os.kill(agent_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while api.get(f"/sandboxes/{sandbox.sandbox_id}").status_code != 404:
        assert time.monotonic() < deadline, "the sandbox outlived its main process"
        time.sleep(0.1)
    killed = api.get(f"/events/sandboxes/{sandbox.sandbox_id}").json()[0]
    assert killed["type"] == "sandbox.lifecycle.killed"
    assert killed["eventData"]["kill_reason"] == "error"


def _wait_for_parent_of(cmdline: list[str], timeout_s: float = 10.0) -> int:
    """The host pid of the parent of the process running exactly `cmdline`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline", "ppid"]):
            if process.info["cmdline"] == cmdline:
                return int(process.info["ppid"])
        time.sleep(0.05)
    raise AssertionError(f"no process {cmdline} on the host after {timeout_s} s")
