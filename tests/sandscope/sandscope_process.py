"""A `sandscope <command>` started as its own process, its printed lines read by threads:
what the end-to-end tests of `run` and `collect` wait on and stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# A one-shot command (`status`, `api`, `collect --once`) against a local API: a few seconds,
# most of it Python's start; a minute means it hangs.
ONE_SHOT_TIMEOUT_S = 60.0


def run_to_end(
    env: dict[str, str], cwd: Path, *args: str, timeout_s: float = ONE_SHOT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """`sandscope *args` in its own process group, run to its end; past `timeout_s` the
    whole group is killed and the test fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandscope", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"sandscope {' '.join(args)} ran past {timeout_s} s: {err}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class SandscopeProcess:
    """`sandscope *args` in `cwd`, in a process group of its own (killed whole if it does
    not stop); threads collect its stdout and stderr lines."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.env = env
        self.out: list[str] = []
        self.err: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandscope", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
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
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            for reader in self._readers:
                reader.join(5)
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()
        return code, time.monotonic() - started

    def show(self) -> str:
        return "\nstdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)
