"""`sandscope run` as `make run` starts it (sandboxd, the collectors and the dashboard in one
process), started as its own process on free ports and temporary files, for end-to-end tests.

No E2B_*, SANDSCOPE_* or SANDBOXD_* variable of the caller's leaks into its environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.sandscope.sandscope_process import READY_TIMEOUT_S, SandscopeProcess

URL_LINE = re.compile(r"^sandscope dashboard: (http://\S+)$")
SANDBOXD_LINE = re.compile(r"started sandboxd at (http://\S+) ")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = f"sandscope-run-test-{os.getpid()}-"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def monitor_env(home: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a `sandscope run` keeping its data in `home` and serving on `port`:
    sandboxd on free ports in a cgroup parent of its own, then `settings`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_", "SANDBOXD_"))
    }
    env.update(
        SANDSCOPE_DATA_DIR=str(home / "data"),
        SANDSCOPE_SANDBOXD_DATA_DIR=str(home / "sandboxd"),
        SANDSCOPE_PORT=str(port),
        SANDBOXD_API_PORT="0",
        SANDBOXD_ENVD_PORT="0",
        SANDBOXD_CGROUP_PARENT=f"{CGROUP_PREFIX}{port}",
    )
    env.update(settings)
    return env


@dataclass
class Monitor:
    """A `sandscope run` serving its dashboard at `url`, its sandboxd at `sandboxd_url`."""

    run: SandscopeProcess
    url: str
    sandboxd_url: str
    home: Path

    def sandboxd_api(self) -> httpx.Client:
        """A client on the sandboxd's API, with its key."""
        key = (self.home / "sandboxd" / "api_key").read_text().strip()
        return httpx.Client(base_url=self.sandboxd_url, headers={"X-API-Key": key}, timeout=30)


@contextlib.contextmanager
def running_monitor(
    home: Path, env: dict[str, str], *args: str, ready_timeout_s: float = READY_TIMEOUT_S
) -> Iterator[Monitor]:
    """`sandscope run [args]` in `home`, once it serves; stopped with SIGINT after, and its
    cgroup parent removed once empty."""
    run = SandscopeProcess(env, home, "run", *args)
    try:
        url = run.wait_for(URL_LINE, timeout_s=ready_timeout_s).group(1)
        sandboxd_url = run.wait_for(SANDBOXD_LINE, timeout_s=ready_timeout_s).group(1)
        yield Monitor(run, url, sandboxd_url, home)
    finally:
        try:
            run.stop()
        finally:
            remove_empty_cgroups(env["SANDBOXD_CGROUP_PARENT"])


def remove_empty_cgroups(name_glob: str) -> None:
    """Remove the cgroups named like `name_glob` under any controller, those that are empty."""
    for path in CGROUP_ROOT.glob(f"*/{name_glob}"):
        with contextlib.suppress(OSError):
            path.rmdir()


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
