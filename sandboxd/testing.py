"""A real sandboxd started as a child process on free ports, for tests and benchmarks.

sandboxd itself never imports this module. It lives in the package (not under tests/) because
both the end-to-end tests and `bench/sandboxd_bench.py` start sandboxd this way, and a benchmark
must run without the tests on its path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sandboxd.config import SandboxdSettings

# The directory that holds the sandboxd package (the checkout, in a development install): the
# child runs from there, so `python -m sandboxd` is this very code.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = re.compile(r"sandboxd ready: api (\S+) envd (\S+)")
# A cold start (isolation probe, store migration) takes a few seconds on a busy machine.
START_TIMEOUT_S = 30.0
# sandboxd kills its sandboxes on SIGTERM; past this it gets SIGKILL (its next start cleans up).
STOP_TIMEOUT_S = 30.0
_started = itertools.count()


@dataclass(frozen=True)
class RunningSandboxd:
    """How to reach a running sandboxd."""

    api_url: str
    envd_url: str
    api_key: str
    team_id: str
    data_dir: Path
    process: subprocess.Popen[str]

    def sdk_env(self) -> dict[str, str]:
        """The variables that point the official SDK (and sandscope) at this sandboxd."""
        return {
            "E2B_API_URL": self.api_url,
            "E2B_SANDBOX_URL": self.envd_url,
            "E2B_API_KEY": self.api_key,
        }


@contextmanager
def running_sandboxd(data_dir: Path, **settings: str) -> Iterator[RunningSandboxd]:
    """Start `python -m sandboxd` with its data in `data_dir`; stop it (SIGTERM) after."""
    env = {
        # Nothing of a developer's own sandboxd or E2B account leaks in.
        **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOXD_", "E2B_"))},
        "SANDBOXD_DATA_DIR": str(data_dir),
        "SANDBOXD_API_PORT": "0",
        "SANDBOXD_ENVD_PORT": "0",
        # One parent per sandboxd: two alive at once (a session-wide one beside a module's)
        # would each take the other's sandboxes for leftovers of a crash.
        "SANDBOXD_CGROUP_PARENT": f"sandboxd-test-{os.getpid()}-{next(_started)}",
        **settings,
    }
    files = SandboxdSettings(data_dir=data_dir)  # where sandboxd keeps its key and team ID
    with open(data_dir / "sandboxd.log", "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandboxd"],
            cwd=SOURCE_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
        try:
            api_url, envd_url = _wait_until_ready(process)
            yield RunningSandboxd(
                api_url=api_url,
                envd_url=envd_url,
                api_key=files.key_file.read_text().strip(),
                team_id=files.team_id_file.read_text().strip(),
                data_dir=data_dir,
                process=process,
            )
        finally:
            stop(process)
            _remove_cgroup_parent(env["SANDBOXD_CGROUP_PARENT"])


@contextmanager
def api_client(server: RunningSandboxd) -> Iterator[httpx.Client]:
    """An HTTP client on `server`'s API, with its key."""
    with httpx.Client(
        base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=30
    ) as client:
        yield client


def _remove_cgroup_parent(parent: str) -> None:
    """The parent cgroups sandboxd made, once empty (a test leaves no cgroup behind)."""
    for hierarchy in Path("/sys/fs/cgroup").glob("*"):
        with contextlib.suppress(OSError):  # absent, or still busy after a crash
            (hierarchy / parent).rmdir()


def _wait_until_ready(process: subprocess.Popen[str]) -> tuple[str, str]:
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            match = READY_LINE.search(line)
            if match:
                return match.group(1), match.group(2)
            if not line and process.poll() is not None:
                break
    raise RuntimeError(f"sandboxd did not start (exit code {process.poll()}); see its log")


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then SIGKILL past STOP_TIMEOUT_S; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode
