"""Run code as a second, unprivileged host user: the local attacker of issue 9."""

from __future__ import annotations

import os
import subprocess

import pytest

# An id no account on a test machine uses: the attacker owns nothing sandboxd made.
ATTACKER_UID = 64_999
SYSTEM_PYTHON = "/usr/bin/python3"


def needs_root_to_switch_user() -> None:
    """Skip unless this test may become another uid (CI runs as root, so it runs there)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run code as a second host user")


def run_as_attacker(code: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run Python `code` as ATTACKER_UID (no groups, no capabilities) and return the result;
    the environment is the test's minus anything secret-looking."""
    needs_root_to_switch_user()
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is missing: the second user needs an interpreter it may run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
    argv = [
        "/usr/bin/setpriv",
        f"--reuid={ATTACKER_UID}",
        f"--regid={ATTACKER_UID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        # The system interpreter: the test's own may sit under a home no other user can enter.
        SYSTEM_PYTHON,
        "-I",
        "-c",
        code,
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s, env=env, check=False, cwd="/"
    )
