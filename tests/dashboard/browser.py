"""What the browser tests drive: `sandscope run` as `make run` starts it (sandboxd, the demo,
the collectors and the dashboard in one process) on free ports and temporary files, and
Debian's chromium through Playwright (never a downloaded browser).

The process runs in a temporary directory holding a copy of the repository's
`.streamlit/config.toml` (its themes apply) and no `secrets.toml` (no developer's logins
leak in); no E2B_*, SANDSCOPE_* or SANDBOXD_* variable of the caller's leaks in either.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.sandboxd.kernel_oom import kernel_oom_skip_reason
from tests.sandscope.running_monitor import (
    Monitor,
    free_port,
    monitor_env,
    running_monitor,
)

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
READY_TIMEOUT_S = 90.0
# Fast collection: polls, events and samples every second.
STACK_SETTINGS = {
    "SANDSCOPE_POLL_INTERVAL_S": "1",
    "SANDSCOPE_EVENTS_INTERVAL_S": "1",
    "SANDBOXD_SAMPLE_INTERVAL_S": "1",
}


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"no {CHROMIUM} (Debian's chromium; tools/bootstrap.sh installs it)"
    return kernel_oom_skip_reason()  # the demo's OOM kill


@contextlib.contextmanager
def running_stack(home: Path) -> Iterator[Monitor]:
    """`sandscope run` (demo on) in `home`, once it serves; stopped with SIGINT after."""
    (home / ".streamlit").mkdir(parents=True)
    shutil.copy(REPOSITORY / ".streamlit" / "config.toml", home / ".streamlit" / "config.toml")
    env = monitor_env(home, free_port(), **STACK_SETTINGS)
    with running_monitor(home, env, ready_timeout_s=READY_TIMEOUT_S) as stack:
        yield stack
