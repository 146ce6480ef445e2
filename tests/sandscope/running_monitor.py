"""`sandscope run` as `make run` starts it (sandboxd, the collectors and the dashboard in one
process), started as its own process on free ports and temporary files, for end-to-end tests.

No E2B_*, SANDSCOPE_* or SANDBOXD_* variable of the caller's leaks into its environment.
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
from typing import IO

import httpx

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
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
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(
        self,
        pattern: re.Pattern[str],
        lines: list[str] | None = None,
        timeout_s: float = READY_TIMEOUT_S,
    ) -> re.Match[str]:
        """The first line of `lines` (default: stdout) matching `pattern`; fails if the
        process exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in list(self.out if lines is None else lines):
                if match := pattern.search(line):
                    return match
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.show()}"
            assert time.monotonic() < deadline, f"no line like {pattern.pattern}: {self.show()}"
            time.sleep(0.05)

    def stop(self, signum: int | None = signal.SIGINT) -> tuple[int, float]:
        """Send `signum` (None: none, it exits by itself), wait a bounded time, then kill;
        (exit code, seconds to exit)."""
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
    """A `sandscope run` serving its dashboard at `url`, its sandboxd at `sandboxd_url`."""

    run: Run
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
    run = Run(env, home, *args)
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
