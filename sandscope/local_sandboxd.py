"""sandboxd as a child of `sandscope run`: started on free ports, stopped with its sandboxes.

sandboxd runs as `python -m sandboxd` in its own session, so a Ctrl-C in the terminal reaches
only sandscope, which stops sandboxd last (after the collectors stopped reading it). Where
util-linux's `setpriv` exists, sandboxd also gets SIGTERM if sandscope dies without stopping
it, so even a `kill -9` of sandscope leaves no sandbox running. Its log (stderr and the
lines after the ready line) goes to `sandboxd.log` in its data directory.

A sandboxd already serving from the same data directory (`sandscope sandboxd` in another
terminal) is used as it is and left running: two on one directory would fight over it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sandboxd.config import ConfigError, SandboxdSettings, load_settings

READY_LINE = re.compile(r"sandboxd ready: api (\S+) envd (\S+)")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_FILE_NAME = "sandboxd.log"
_LOG_TAIL_LINES = 8
_CGROUP_ROOT = Path("/sys/fs/cgroup")
# Files sandboxd writes in its data directory (sandboxd/server.py): the URLs it serves at, with
# the ports it took, rewritten at every start; and the team ID it made at its first start.
ENDPOINTS_FILE_NAME = "endpoints.json"
# A sandboxd on this machine answers /health in milliseconds; a stale endpoints file names a
# closed port, refused at once. Two seconds only bounds a host that is badly overloaded.
HEALTH_TIMEOUT_S = 2.0


class SandboxdError(Exception):
    """sandboxd cannot be started or used; the message says why and where its log is."""


class SandboxdConfigError(SandboxdError):
    """A SANDBOXD_* setting has a value sandboxd cannot use; the message names it."""


class NotRunning(Exception):
    """No sandboxd serves from a data directory; the message says what was missing."""


@dataclass(frozen=True)
class RunningSandboxd:
    """What a running sandboxd left in its data directory, checked against its /health."""

    api_url: str
    envd_url: str
    api_key: str = field(repr=False)
    team_id: str | None
    isolation: str
    endpoints_file: Path


@dataclass
class LocalSandboxd:
    """A sandboxd that `run` uses: its endpoints, key and team, and (when `run` started it)
    the process to stop."""

    api_url: str
    envd_url: str
    api_key: str = field(repr=False)
    team_id: str | None
    data_dir: Path
    max_sandboxes: int
    isolation: str  # sandboxd's own words, e.g. "full (namespaces, cgroups v1, ...)"
    process: subprocess.Popen[str] | None = None
    _drain: threading.Thread | None = field(default=None, repr=False)

    @property
    def started_here(self) -> bool:
        """True when `run` started this sandboxd (and so stops it)."""
        return self.process is not None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def endpoints_file(self) -> Path:
        """The file where sandboxd wrote its URLs (how other commands find it)."""
        return self.data_dir / ENDPOINTS_FILE_NAME

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (sandboxd kills its sandboxes, reason "sandboxd shutdown", and removes its
        cgroups), SIGKILL after `timeout_s` (its next start cleans up what that left).
        Returns the exit code; None for a sandboxd `run` did not start (left running).
        Idempotent."""
        if self.process is None:
            return None
        code = stop_process(self.process, timeout_s)
        drain_alive = False
        if self._drain is not None:
            self._drain.join(5.0)  # it ends at sandboxd's end of output
            drain_alive = self._drain.is_alive()
        if self.process.stdout is not None and not drain_alive:
            self.process.stdout.close()
        return code


def sandboxd_environment(data_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the child sandboxd: `data_dir`, and both ports 0 (free ports)
    unless SANDBOXD_API_PORT / SANDBOXD_ENVD_PORT are set."""
    env = dict(environ)
    env["SANDBOXD_DATA_DIR"] = str(data_dir)
    for name in ("SANDBOXD_API_PORT", "SANDBOXD_ENVD_PORT"):
        if not env.get(name, "").strip():
            env[name] = "0"
    return env


def use_or_start(
    data_dir: Path,
    environ: Mapping[str, str] = os.environ,
    cancel: threading.Event | None = None,
) -> LocalSandboxd:
    """The sandboxd already serving from `data_dir`, or a new one started for this run.

    Raises SandboxdConfigError when a SANDBOXD_* setting is bad, SandboxdError when sandboxd
    does not become ready within START_TIMEOUT_S (the message quotes the end of its log) or
    `cancel` is set meanwhile (it is stopped then).
    """
    env = sandboxd_environment(data_dir, environ)
    try:
        config = load_settings(env)
    except ConfigError as bad:
        raise SandboxdConfigError(f"sandboxd: {bad}") from None
    running = find_running(config)
    if running is not None:
        return running
    return start(config, env, cancel)


def find_running(config: SandboxdSettings) -> LocalSandboxd | None:
    """The sandboxd serving from `config.data_dir` (see `probe_running`); None when there is
    none."""
    try:
        running = probe_running(config.data_dir)
    except NotRunning:
        return None
    return LocalSandboxd(
        api_url=running.api_url,
        envd_url=running.envd_url,
        api_key=running.api_key,
        team_id=config.team_id or running.team_id,
        data_dir=config.data_dir,
        max_sandboxes=config.max_sandboxes,
        isolation=running.isolation,
    )


def probe_running(data_dir: Path) -> RunningSandboxd:
    """The sandboxd serving from `data_dir`: the endpoints it wrote there at start (whatever
    ports it took), once its /health answers 200, and the key it keeps there. Raises
    NotRunning saying which of these is missing."""
    endpoints_file = data_dir / ENDPOINTS_FILE_NAME
    try:
        endpoints = json.loads(endpoints_file.read_text())
        api_url, envd_url = str(endpoints["api_url"]), str(endpoints["envd_url"])
    except FileNotFoundError:
        raise NotRunning(
            f"there is no {endpoints_file} (sandboxd writes it when it starts)"
        ) from None
    except OSError as unreadable:
        raise NotRunning(f"{endpoints_file} is not readable ({unreadable.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise NotRunning(f"{endpoints_file} does not hold sandboxd's two URLs") from None
    try:
        health = httpx.get(f"{api_url}/health", timeout=HEALTH_TIMEOUT_S)
    except httpx.HTTPError as failed:
        raise NotRunning(
            f"{endpoints_file} names {api_url}, where nothing answers ({failed!r}): "
            "the sandboxd that wrote it has stopped"
        ) from None
    if health.status_code != 200:
        raise NotRunning(f"{api_url}/health (from {endpoints_file}) answered {health.status_code}")
    key_file = sandboxd_key_file(data_dir)
    try:
        api_key = key_file.read_text().strip()
    except OSError as unreadable:
        raise NotRunning(
            f"a sandboxd serves at {api_url}, but its key {key_file} is not readable "
            f"({unreadable.strerror}): run as the user who runs sandboxd"
        ) from None
    _, _, isolation = health.text.partition("isolation: ")
    return RunningSandboxd(
        api_url=api_url,
        envd_url=envd_url,
        api_key=api_key,
        team_id=read_team_id(data_dir),
        isolation=isolation.strip() or "unknown",
        endpoints_file=endpoints_file,
    )


def sandboxd_key_file(data_dir: Path) -> Path:
    """Where the sandboxd of `data_dir` keeps its API key (sandboxd's own rule)."""
    return SandboxdSettings(data_dir=data_dir).key_file


def read_team_id(data_dir: Path) -> str | None:
    """The team ID sandboxd made at its first start (in `data_dir`), None if there is none."""
    with contextlib.suppress(OSError):
        return SandboxdSettings(data_dir=data_dir).team_id_file.read_text().strip() or None
    return None


def start(
    config: SandboxdSettings, env: Mapping[str, str], cancel: threading.Event | None = None
) -> LocalSandboxd:
    """Start `python -m sandboxd` with `env` and wait for its ready line (or `cancel`)."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = config.data_dir / LOG_FILE_NAME
    with open(log_path, "a") as log_file:  # the child keeps its own descriptor
        log_file.write(f"--- started by sandscope run (pid {os.getpid()}) ---\n")
        log_file.flush()
        process = subprocess.Popen(
            [*_parent_death_prefix(), sys.executable, "-m", "sandboxd"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,
        )
    try:
        api_url, envd_url, isolation = _wait_until_ready(
            process, log_path, START_TIMEOUT_S, cancel or threading.Event()
        )
        api_key = config.key_file.read_text().strip()
    except BaseException:
        stop_process(process, STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()
        # A sandboxd that cannot listen exits without its own clean-up, leaving the (empty)
        # parent cgroups its isolation probe made.
        remove_empty_cgroups(config.cgroup_parent)
        raise
    drain = threading.Thread(
        target=_copy_lines, args=(process, log_path), name="sandboxd-log", daemon=True
    )
    drain.start()
    return LocalSandboxd(
        api_url=api_url,
        envd_url=envd_url,
        api_key=api_key,
        team_id=config.team_id or read_team_id(config.data_dir),
        data_dir=config.data_dir,
        max_sandboxes=config.max_sandboxes,
        isolation=isolation,
        process=process,
        _drain=drain,
    )


def _wait_until_ready(
    process: subprocess.Popen[str], log_path: Path, timeout_s: float, cancel: threading.Event
) -> tuple[str, str, str]:
    """(api URL, envd URL, isolation note) from sandboxd's first lines on stdout."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while (left_s := deadline - time.monotonic()) > 0:
        if cancel.is_set():
            raise SandboxdError("sandboxd start cancelled")
        ready, _, _ = select.select([process.stdout], [], [], min(left_s, 0.2))
        if not ready:
            if process.poll() is not None:
                break
            continue
        line = process.stdout.readline()
        if not line:
            break
        match = READY_LINE.search(line)
        if match:
            # The isolation line comes in the same write, so it is already buffered (select
            # would not see it any more).
            isolation = process.stdout.readline().removeprefix("isolation:").strip()
            return match.group(1), match.group(2), isolation
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(2.0)  # its output ended: it is exiting, or it closed stdout and hangs
    code = process.poll()
    why = "did not become ready" if code is None else f"exited with code {code}"
    raise SandboxdError(
        f"sandboxd {why} (log: {log_path}); the end of its log:\n{_log_tail(log_path)}"
    )


def _log_tail(log_path: Path) -> str:
    """The last lines of sandboxd's log, indented."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except OSError as unreadable:
        return f"  (cannot read {log_path}: {unreadable.strerror})"
    return "\n".join(f"  {line}" for line in lines) or "  (empty)"


def _copy_lines(process: subprocess.Popen[str], log_path: Path) -> None:
    """Copy what sandboxd prints after its ready line into its log, until it exits."""
    assert process.stdout is not None
    with open(log_path, "a") as log_file:
        for line in process.stdout:
            log_file.write(line)
            log_file.flush()


def stop_process(process: subprocess.Popen[str], timeout_s: float) -> int:
    """SIGTERM, then SIGKILL past `timeout_s`; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def remove_empty_cgroups(parent: str) -> None:
    """rmdir `parent` under each cgroup hierarchy where it is empty (best effort)."""
    for hierarchy in (_CGROUP_ROOT, *_CGROUP_ROOT.glob("*")):
        with contextlib.suppress(OSError):
            (hierarchy / parent.strip("/")).rmdir()


@functools.cache
def _parent_death_prefix() -> tuple[str, ...]:
    """setpriv's wrapper that sends sandboxd SIGTERM if the thread that started it dies
    (the main thread of `run`); empty where setpriv lacks --pdeathsig (util-linux < 2.33)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, check=False)
    return (setpriv, "--pdeathsig", "TERM", "--") if "--pdeathsig" in usage.stdout else ()
