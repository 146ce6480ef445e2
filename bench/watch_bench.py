"""Directory watching against a real sandboxd: how long from a write in the box to the
event in the official SDK's hands (target: under 200 ms).

Run from anywhere: `.venv/bin/python bench/watch_bench.py` (about 30 seconds; `--help` for
the counts). It starts its own sandboxd (free ports, a temporary data directory, default
settings), makes one sandbox, and times two ways of watching: the async SDK's stream
(`AsyncSandbox.files.watch_dir`) and the sync SDK's polling (`Sandbox.files.watch_dir`,
`get_new_events` in a loop). A process in the box creates files named after the wall
clock just before each `open` (the box shares the host's kernel, hence its clock); the
latency is the time the SDK hands over the event minus that name. Everything is killed at
the end, on error too. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from e2b import AsyncSandbox, Sandbox
from e2b.sandbox.filesystem.watch_handle import FilesystemEvent, FilesystemEventType
from percentiles import percentile  # bench/percentiles.py, beside this script

from sandboxd.testing import RunningSandboxd, running_sandboxd

CGROUP_PARENT = f"sandboxd-watch-bench-{os.getpid()}"
SANDBOX_TIMEOUT_S = 600
WATCHED = "/tmp/watch-bench"
TARGET_MS = 200.0
DONE_TIMEOUT_S = 60.0
# Writes in the box, spaced so each event is timed alone rather than queued behind others.
WRITER = (
    "import time\n"
    "for _ in range({writes}):\n"
    "    open(f'{watched}/t-{{time.time_ns()}}', 'w').close()\n"
    "    time.sleep({gap_s})\n"
)


def writer_command(writes: int, gap_s: float) -> str:
    return f'python3 -c "{WRITER.format(writes=writes, watched=WATCHED, gap_s=gap_s)}"'


def latency_ms(event: FilesystemEvent, received_ns: int) -> float | None:
    """Write-to-SDK time of a create event of the writer's, in ms; None for others."""
    if event.type != FilesystemEventType.CREATE or not event.name.startswith("t-"):
        return None
    return (received_ns - int(event.name[2:])) / 1e6


async def measure_stream(
    server: RunningSandboxd, sandbox_id: str, writes: int, gap_s: float
) -> list[float]:
    sandbox = await AsyncSandbox.connect(
        sandbox_id, api_key=server.api_key, api_url=server.api_url, sandbox_url=server.envd_url
    )
    times_ms: list[float] = []
    all_in = asyncio.Event()

    def on_event(event: FilesystemEvent) -> None:
        if (ms := latency_ms(event, time.time_ns())) is not None:
            times_ms.append(ms)
            if len(times_ms) == writes:
                all_in.set()

    handle = await sandbox.files.watch_dir(WATCHED, on_event, timeout=0)
    try:
        await sandbox.commands.run(writer_command(writes, gap_s), timeout=DONE_TIMEOUT_S)
        await asyncio.wait_for(all_in.wait(), DONE_TIMEOUT_S)
    finally:
        await handle.stop()  # type: ignore[no-untyped-call]  # the SDK's, untyped
    return times_ms


def measure_polling(
    server: RunningSandboxd, sandbox_id: str, writes: int, gap_s: float
) -> list[float]:
    sandbox = Sandbox.connect(
        sandbox_id, api_key=server.api_key, api_url=server.api_url, sandbox_url=server.envd_url
    )
    handle = sandbox.files.watch_dir(WATCHED)
    times_ms: list[float] = []
    writer = threading.Thread(
        target=sandbox.commands.run,
        args=(writer_command(writes, gap_s),),
        kwargs={"timeout": DONE_TIMEOUT_S},
    )
    writer.start()
    deadline = time.monotonic() + DONE_TIMEOUT_S
    try:
        while len(times_ms) < writes and time.monotonic() < deadline:
            events = handle.get_new_events()
            received_ns = time.time_ns()
            times_ms += [ms for e in events if (ms := latency_ms(e, received_ns)) is not None]
    finally:
        writer.join()
        handle.stop()
    return times_ms


def row(name: str, times_ms: list[float], writes: int) -> str:
    median, p90, worst = statistics.median(times_ms), percentile(times_ms, 90), max(times_ms)
    met = "yes" if p90 < TARGET_MS else "NO"
    return (
        f"| {name} | {len(times_ms)}/{writes} | {median:.1f} | {p90:.1f} | {worst:.1f} "
        f"| < {TARGET_MS:g} | {met} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200, help="files the box creates per way")
    parser.add_argument("--gap-s", type=float, default=0.02, help="pause between two writes")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sandboxd-watch-bench-") as data_dir,
        running_sandboxd(Path(data_dir), SANDBOXD_CGROUP_PARENT=CGROUP_PARENT) as server,
    ):
        sandbox = Sandbox.create(
            template="base", timeout=SANDBOX_TIMEOUT_S, api_key=server.api_key,
            api_url=server.api_url, sandbox_url=server.envd_url,
        )  # fmt: skip
        try:
            sandbox.files.make_dir(WATCHED)
            health = httpx.get(f"{server.api_url}/health", timeout=DONE_TIMEOUT_S).text
            isolation = health.split("isolation: ", 1)[-1].split(" (", 1)[0]
            say = f"sandbox {sandbox.sandbox_id} (isolation {isolation}): {args.writes} writes"
            print(say, file=sys.stderr)
            stream = asyncio.run(
                measure_stream(server, sandbox.sandbox_id, args.writes, args.gap_s)
            )
            polling = measure_polling(server, sandbox.sandbox_id, args.writes, args.gap_s)
        finally:
            sandbox.kill()
    print("| watch | events | median ms | p90 ms | max ms | target | met |")
    print("|---|---|---|---|---|---|---|")
    print(row("async stream (WatchDir)", stream, args.writes))
    print(row("sync polling (GetWatcherEvents)", polling, args.writes))


if __name__ == "__main__":
    main()
