"""Issue 9, finding 3: a process's output cannot grow sandboxd, whoever reads it.

A box runs `head -c 600M /dev/zero` through the official SDK, once with `background=True` and
the handle never read, once followed by a reader that takes a small chunk at a time. Either
way sandboxd's own memory (psutil on its pid, sampled every few milliseconds) must grow by
less than a bound while the process runs: its output waits in the box (the agent's ack
window and the pipe), never in sandboxd. Before flow control it grew from 73 to 707 MB.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from e2b import CommandExitException, Sandbox

from sandboxd.testing import RunningSandboxd
from tests.security.test_files_api_bounds import PeakRss

MIB = 1 << 20
OUTPUT_BYTES = 600 * MIB
# What a process's output may add to sandboxd's peak RSS. With flow control at most the
# agent's windows (1 MiB a box) are in flight, plus the stream's encoding; 64 MiB leaves
# room for the allocator while catching an output buffered whole (600 MiB).
RSS_GROWTH_BOUND_BYTES = 64 * MIB
# How long the output is watched. With the agent's windows raised by hand (no flow control)
# sandboxd grew past the bound within seconds in both tests; with them it grew about 1 MiB
# in the whole time, the unread process blocked after 3.3 MiB.
WATCH_DEADLINE_S = 15.0
POLL_PERIOD_S = 0.2
# The slow reader's pause after each chunk it takes (a client that reads ~1 MB/s).
SLOW_READ_PAUSE_S = 0.05


@pytest.fixture
def sandbox(sdk_env: None) -> Iterator[Sandbox]:
    box = Sandbox.create(template="base", timeout=120)
    yield box
    with contextlib.suppress(Exception):  # already gone
        box.kill()


def _bytes_written(sandbox: Sandbox, pid: int) -> int | None:
    """How much the process has written (its /proc io `wchar`), None once it has ended."""
    try:
        io = sandbox.commands.run(f"cat /proc/{pid}/io").stdout
    except CommandExitException:
        return None
    fields = dict(line.split(": ", 1) for line in io.splitlines() if ": " in line)
    return int(fields["wchar"])


def test_output_nobody_reads_waits_in_the_box(sandboxd: RunningSandboxd, sandbox: Sandbox) -> None:
    written: int | None = 0
    with PeakRss(sandboxd.process.pid) as rss:
        handle = sandbox.commands.run(f"head -c {OUTPUT_BYTES} /dev/zero", background=True)
        deadline = time.monotonic() + WATCH_DEADLINE_S
        # Until the process has written everything (or ended), sandboxd has visibly taken it
        # in, or the deadline: with flow control the process blocks and the deadline ends it.
        while time.monotonic() < deadline and rss.growth_bytes < RSS_GROWTH_BOUND_BYTES:
            written = _bytes_written(sandbox, handle.pid)
            if written is None or written >= OUTPUT_BYTES:
                break
            time.sleep(POLL_PERIOD_S)
        handle.kill()

    shown = "all" if written is None else f"{written / MIB:.0f} MiB"
    assert rss.growth_bytes < RSS_GROWTH_BOUND_BYTES, (
        f"sandboxd grew {rss.growth_bytes / MIB:.0f} MiB while the process wrote {shown}"
    )


def test_output_followed_slowly_waits_in_the_box(
    sandboxd: RunningSandboxd, sandbox: Sandbox
) -> None:
    read_bytes = 0
    with PeakRss(sandboxd.process.pid) as rss:
        handle = sandbox.commands.run(f"head -c {OUTPUT_BYTES} /dev/zero", background=True)
        deadline = time.monotonic() + WATCH_DEADLINE_S
        for stdout, _, _ in handle:
            read_bytes += len(stdout or "")
            if time.monotonic() > deadline or rss.growth_bytes >= RSS_GROWTH_BOUND_BYTES:
                break
            time.sleep(SLOW_READ_PAUSE_S)  # the attack: a reader slower than the writer
        handle.kill()

    assert read_bytes > 0, "the reader got no output at all"
    assert rss.growth_bytes < RSS_GROWTH_BOUND_BYTES, (
        f"sandboxd grew {rss.growth_bytes / MIB:.0f} MiB while the reader took "
        f"{read_bytes / MIB:.1f} MiB"
    )
