"""What the browser tests drive: `sandscope run` as `make run` starts it (sandboxd, the demo,
the collectors and the dashboard in one process) on free ports and temporary files, and
Debian's chromium through Playwright (never a downloaded browser).

The process runs in a temporary directory holding a copy of the repository's
`.streamlit/config.toml` (its themes apply) and no `secrets.toml` (no developer's logins
leak in); no E2B_*, SANDSCOPE_* or SANDBOXD_* variable of the caller's leaks in either.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

REPOSITORY = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: no GPU, no QUIC, no calls home, no component or sync downloads.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = f"sandscope-browser-test-{os.getpid()}-"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
URL_LINE = re.compile(r"^sandscope dashboard: (http://\S+)$")
SANDBOXD_LINE = re.compile(r"started sandboxd at (http://\S+) ")


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"no {CHROMIUM} (Debian's chromium; tools/bootstrap.sh installs it)"
    if os.geteuid() != 0 or not (CGROUP_ROOT / "memory").is_dir():
        return "the demo's OOM kill needs root and cgroup v1 memory (sandboxd's full mode)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """A running `sandscope run` with its demo; threads collect its output lines."""

    process: subprocess.Popen[str]
    home: Path
    env: dict[str, str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    url: str = ""
    api_url: str = ""

    def wait_for_line(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        """The first stdout line matching `pattern`; fails if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in list(self.out):
                if match := pattern.search(line):
                    return match
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.show()}"
            assert time.monotonic() < deadline, f"no line like {pattern.pattern}: {self.show()}"
            time.sleep(0.1)

    def api(self) -> httpx.Client:
        """A client on the stack's sandboxd API, with its key."""
        key = (self.home / "sandboxd" / "api_key").read_text().strip()
        return httpx.Client(base_url=self.api_url, headers={"X-API-Key": key}, timeout=30)

    def show(self) -> str:
        return "\nstdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)


def _collect(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def stack_env(home: Path, port: int) -> dict[str, str]:
    """The environment of `sandscope run` for these tests: fast collection, free ports."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_", "SANDBOXD_"))
    }
    env.update(
        SANDSCOPE_DATA_DIR=str(home / "data"),
        SANDSCOPE_SANDBOXD_DATA_DIR=str(home / "sandboxd"),
        SANDSCOPE_PORT=str(port),
        SANDSCOPE_POLL_INTERVAL_S="1",
        SANDSCOPE_EVENTS_INTERVAL_S="1",
        SANDBOXD_API_PORT="0",
        SANDBOXD_ENVD_PORT="0",
        SANDBOXD_SAMPLE_INTERVAL_S="1",
        SANDBOXD_CGROUP_PARENT=f"{CGROUP_PREFIX}{port}",
    )
    return env


@contextlib.contextmanager
def running_stack(home: Path) -> Iterator[Stack]:
    """`sandscope run` (demo on) in `home`, once it serves; stopped with SIGINT after."""
    (home / ".streamlit").mkdir(parents=True)
    shutil.copy(REPOSITORY / ".streamlit" / "config.toml", home / ".streamlit" / "config.toml")
    env = stack_env(home, free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "sandscope", "run"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stack = Stack(process, home, env)
    readers = [
        threading.Thread(target=_collect, args=(process.stdout, stack.out), daemon=True),
        threading.Thread(target=_collect, args=(process.stderr, stack.err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        stack.api_url = stack.wait_for_line(SANDBOXD_LINE, READY_TIMEOUT_S).group(1)
        stack.url = stack.wait_for_line(URL_LINE, READY_TIMEOUT_S).group(1)
        yield stack
    finally:
        _stop(stack, readers)


def _stop(stack: Stack, readers: list[threading.Thread]) -> None:
    """Ctrl-C, a bounded wait, then kill; the empty cgroup parent removed."""
    process = stack.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for reader in readers:
            reader.join(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        for path in CGROUP_ROOT.glob(f"*/{stack.env['SANDBOXD_CGROUP_PARENT']}"):
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
