"""Issue 11: a box making files in a loop under a directory watch costs a bounded amount.

The box's code makes and removes 100,000 files in a watched directory, two events each,
while the client does not poll. The watcher's queue stops at its cap and the watcher then
fails with a watcher error, as envd's does on an overflow, instead of holding every event;
sandboxd's memory stays within a few MiB of where it was; the box lives on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from e2b import Sandbox
from e2b.exceptions import SandboxException

from sandboxd.agent.agent import WATCH_QUEUE_MAX_EVENTS
from sandboxd.testing import RunningSandboxd

FILES = 100_000
FLOOD_TIMEOUT_S = 120
# What sandboxd may grow by while the box floods: a page of events in flight and the
# allocator's slack, far below the 200,000 events' ~10 MiB of JSON.
SANDBOXD_GROWTH_MAX_BYTES = 16 << 20
# GetWatcherEvents calls that may pass before the overflow is reported: the queue's events
# come in one call, the error with the next.
POLLS_MAX = 3
FLOOD = (
    "import os\n"
    "os.makedirs('/tmp/flood', exist_ok=True)\n"
    f"for i in range({FILES}):\n"
    "    path = f'/tmp/flood/{i}'\n"
    "    open(path, 'w').close()\n"
    "    os.unlink(path)\n"
)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Samples the process's RSS every 20 ms while the block runs; yields [peak bytes]."""
    peak = [rss_bytes(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes(pid))

    sampler = threading.Thread(target=sample, name="rss-sampler")
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], rss_bytes(pid))


def test_a_file_loop_under_a_watch_overflows_the_watcher_not_sandboxd(
    sandboxd: RunningSandboxd, sdk_env: None
) -> None:
    sandbox = Sandbox.create(template="base", timeout=FLOOD_TIMEOUT_S + 60)
    try:
        sandbox.files.make_dir("/tmp/flood")
        watcher = sandbox.files.watch_dir("/tmp/flood")
        before_bytes = rss_bytes(sandboxd.process.pid)
        with peak_rss(sandboxd.process.pid) as peak:
            ran = sandbox.commands.run(f'python3 -c "{FLOOD}"', timeout=FLOOD_TIMEOUT_S)
            delivered, error = 0, None
            for _ in range(POLLS_MAX):
                try:
                    delivered += len(watcher.get_new_events())
                except SandboxException as exc:
                    error = exc
                    break

        assert ran.exit_code == 0
        assert error is not None and "watcher error" in str(error), f"{delivered} events"
        assert delivered <= WATCH_QUEUE_MAX_EVENTS
        grown = peak[0] - before_bytes
        assert grown < SANDBOXD_GROWTH_MAX_BYTES, f"sandboxd grew {grown >> 20} MiB"
        assert sandbox.commands.run("echo alive").stdout == "alive\n"  # the box lives on
    finally:
        sandbox.kill()
