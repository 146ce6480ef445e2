"""sandboxd's speed against a real server: create-to-running, GET latency, the sampler's cost.

Run from anywhere: `.venv/bin/python bench/sandboxd_bench.py` (about 4 minutes; `--help` for
the counts). It starts its own sandboxd (free ports, a temporary data directory, the default
settings, so the default 5 s sampling interval), prints a results table and stops the server.
Every sandbox it makes is killed at the end, on error too. What each number means, and the
recorded results: bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from e2b import Sandbox, Template
from percentiles import percentile  # bench/percentiles.py, beside this script

from sandboxd.testing import RunningSandboxd, running_sandboxd

CGROUP_PARENT = f"sandboxd-bench-{os.getpid()}"
HTTP_TIMEOUT_S = 30.0
SANDBOX_TIMEOUT_S = 600
BUSY_COMMAND = "python3 -c 'while True: pass'"
WARMUP_CREATES = 3
WARMUP_GETS = 20
SETTLE_S = 6.0  # a sampling interval and a bit, before a CPU window opens
LIST_PAGES_MAX = 10
# Diagnosis: the server closes after answering, so the next request opens a new connection.
NEW_CONNECTION = {"Connection": "close"}

CREATE_TARGET_MS = 100.0
GET_TARGET_MS = 5.0
SAMPLER_TARGET_PCT = 2.0


def sdk_sandbox(server: RunningSandboxd, sandbox_id: str) -> Sandbox:
    """The official SDK's handle on a sandbox (one API call: connect)."""
    return Sandbox.connect(
        sandbox_id, api_key=server.api_key, api_url=server.api_url, sandbox_url=server.envd_url
    )


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    measurement: str
    n: str
    median: str
    p90: str
    target: str
    met: str


# --- sandboxes --------------------------------------------------------------------------


def create(api: httpx.Client, headers: dict[str, str] | None = None, template: str = "base") -> str:
    """A new running sandbox from `template`; its ID."""
    body = {"templateID": template, "timeout": SANDBOX_TIMEOUT_S}
    created = api.post("/sandboxes", json=body, headers=headers)
    if created.status_code != 201:
        raise RuntimeError(f"create answered {created.status_code}: {created.text}")
    sandbox_id: str = created.json()["sandboxID"]
    return sandbox_id


def kill(api: httpx.Client, sandbox_id: str) -> None:
    api.delete(f"/sandboxes/{sandbox_id}")


def kill_all(api: httpx.Client) -> None:
    """DELETE every running or paused sandbox, a page of the v2 list at a time."""
    for _ in range(LIST_PAGES_MAX):
        page = api.get("/v2/sandboxes", params={"state": "running,paused", "limit": "100"})
        if not page.json():
            return
        for listed in page.json():
            kill(api, listed["sandboxID"])


# --- (1) create to running --------------------------------------------------------------


@dataclass(frozen=True)
class CreateTimes:
    """Milliseconds from sending POST /sandboxes: to its 201, to the first SDK command."""

    to_201_ms: list[float]
    to_first_command_ms: list[float]


def measure_creates(
    server: RunningSandboxd,
    api: httpx.Client,
    count: int,
    headers: dict[str, str] | None = None,
    template: str = "base",
) -> CreateTimes:
    """`count` creates (after a few unrecorded ones), one at a time, each killed after."""
    times = CreateTimes([], [])
    for index in range(WARMUP_CREATES + count):
        started = time.perf_counter()
        sandbox_id = create(api, headers, template)
        answered = time.perf_counter()
        try:
            sdk_sandbox(server, sandbox_id).commands.run("true")
            commanded = time.perf_counter()
        finally:
            kill(api, sandbox_id)
        if index >= WARMUP_CREATES:
            times.to_201_ms.append((answered - started) * 1000)
            times.to_first_command_ms.append((commanded - started) * 1000)
    return times


# --- (1b) a built template: its build, and creates from it -------------------------------

BUILT_TEMPLATE = "bench-built"
# A small package from PyPI (no dependencies, not in the host's Debian userland, which the
# box shares) and a file: the two-step build.
PIP_PACKAGE = "tomli_w==1.0.0"


def build_template(server: RunningSandboxd, context_dir: Path) -> float:
    """Build BUILT_TEMPLATE through the official SDK (a user-level pip install of
    PIP_PACKAGE from PyPI and a COPY); seconds from the SDK's first call to ready."""
    (context_dir / "app.py").write_text("print('hello from the template')\n")
    template = (
        Template(file_context_path=str(context_dir))
        .from_template("base")
        .pip_install(PIP_PACKAGE, g=False)
        .copy("app.py", "/home/user/")
    )
    started = time.perf_counter()
    Template.build(template, BUILT_TEMPLATE, api_key=server.api_key, api_url=server.api_url)
    return time.perf_counter() - started


def build_row(build_s: float) -> Row:
    return Row("template build: pip install + COPY", "1", f"{build_s:.1f} s", "-", "-", "-")


# --- (2) GET /sandboxes/{id} ------------------------------------------------------------


def measure_gets(
    api: httpx.Client, count: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Milliseconds per GET /sandboxes/{id}, on one keep-alive connection unless `headers`
    say `Connection: close`."""
    sandbox_id = create(api)
    try:
        for _ in range(WARMUP_GETS):
            api.get(f"/sandboxes/{sandbox_id}", headers=headers).raise_for_status()
        latencies_ms = []
        for _ in range(count):
            started = time.perf_counter()
            api.get(f"/sandboxes/{sandbox_id}", headers=headers).raise_for_status()
            latencies_ms.append((time.perf_counter() - started) * 1000)
        return latencies_ms
    finally:
        kill(api, sandbox_id)


# --- (3) the sampler's cost -------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process itself has used, its children excluded."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()  # fields 3.. of proc(5); the name may hold spaces
    utime, stime = int(after_name[11]), int(after_name[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def host_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


@dataclass(frozen=True)
class CpuWindow:
    """sandboxd's CPU use over a window, in % of one core, and how busy the machine was."""

    window_s: float
    sandboxd_pct: float
    host_busy_pct: float


def measure_cpu(pid: int, window_s: float) -> CpuWindow:
    cpu_before, (busy_before, total_before) = process_cpu_s(pid), host_busy_s()
    started = time.monotonic()
    time.sleep(window_s)
    elapsed_s = time.monotonic() - started
    cpu_after, (busy_after, total_after) = process_cpu_s(pid), host_busy_s()
    host_pct = (busy_after - busy_before) / (total_after - total_before) * 100
    return CpuWindow(elapsed_s, (cpu_after - cpu_before) / elapsed_s * 100, host_pct)


def start_busy(server: RunningSandboxd, api: httpx.Client, count: int) -> list[str]:
    """`count` sandboxes, each spinning one CPU-bound loop started through the SDK."""
    sandbox_ids = []
    for _ in range(count):
        sandbox_id = create(api)
        sandbox_ids.append(sandbox_id)
        handle = sdk_sandbox(server, sandbox_id).commands.run(
            BUSY_COMMAND, background=True, timeout=0
        )
        handle.disconnect()  # the loop keeps running; no stream stays open to envd
    return sandbox_ids


def mean_box_cpu_pct(api: httpx.Client, sandbox_ids: list[str]) -> float:
    """The boxes' mean cpuUsedPct in their latest sample (sandboxd's own sampler)."""
    latest = api.get("/sandboxes/metrics", params={"sandbox_ids": ",".join(sandbox_ids)})
    samples = latest.json()["sandboxes"].values()
    return statistics.fmean(sample["cpuUsedPct"] for sample in samples) if samples else 0.0


# --- the table --------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    return percentile(values, 90)


def latency_row(measurement: str, values_ms: list[float], target_ms: float | None) -> Row:
    median_ms = statistics.median(values_ms)
    return Row(
        measurement,
        str(len(values_ms)),
        f"{median_ms:.1f} ms",
        f"{p90(values_ms):.1f} ms",
        "-" if target_ms is None else f"median < {target_ms:g} ms",
        "-" if target_ms is None else ("yes" if median_ms < target_ms else "NO"),
    )


def cpu_row(measurement: str, window: CpuWindow) -> Row:
    return Row(
        measurement,
        f"{window.window_s:.0f} s",
        f"{window.sandboxd_pct:.2f} %",
        "-",
        f"< {SAMPLER_TARGET_PCT:g} % of a core",
        "yes" if window.sandboxd_pct < SAMPLER_TARGET_PCT else "NO",
    )


def render(rows: list[Row]) -> str:
    header = Row("measurement", "n", "median", "p90", "target", "met")
    table = [header, *rows]
    widths = [max(len(getattr(row, name)) for row in table) for name in Row.__annotations__]

    def line(row: Row) -> str:
        cells = [getattr(row, name) for name in Row.__annotations__]
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


# --- the run ----------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    python = sys.version.split()[0]
    return f"{os.cpu_count()} cores ({cpu}), Linux {os.uname().release}, Python {python}"


def run(args: argparse.Namespace, say: Callable[[str], None]) -> list[Row]:
    with (
        tempfile.TemporaryDirectory(prefix="sandboxd-bench-") as data_dir,
        running_sandboxd(Path(data_dir), SANDBOXD_CGROUP_PARENT=CGROUP_PARENT) as server,
        httpx.Client(
            base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=HTTP_TIMEOUT_S
        ) as api,
    ):
        isolation = api.get("/health").text.split("isolation: ", 1)[-1].split(" (", 1)[0]
        say(f"sandboxd {server.api_url} (pid {server.process.pid}), isolation {isolation}")
        try:
            return measure_all(server, api, args, say)
        finally:
            # sandboxd kills whatever is left when it stops; this is the polite way first.
            with contextlib.suppress(httpx.HTTPError):
                kill_all(api)


def measure_all(
    server: RunningSandboxd, api: httpx.Client, args: argparse.Namespace, say: Callable[[str], None]
) -> list[Row]:
    say(f"idle: {SETTLE_S:g} s to settle, then a {args.window_s:g} s window")
    time.sleep(SETTLE_S)
    idle = measure_cpu(server.process.pid, args.window_s)
    say(f"create to running: {args.creates} creates, then as many on new connections")
    creates = measure_creates(server, api, args.creates)
    creates_new = measure_creates(server, api, args.creates, NEW_CONNECTION)
    say(f"a built template: one build, then {args.creates} creates from it")
    with tempfile.TemporaryDirectory(prefix="sandboxd-bench-context-") as context_dir:
        build_s = build_template(server, Path(context_dir))
    built = measure_creates(server, api, args.creates, template=BUILT_TEMPLATE)
    say(f"GET /sandboxes/{{id}}: {args.gets} requests, then as many on new connections")
    gets_ms = measure_gets(api, args.gets)
    gets_new_ms = measure_gets(api, args.gets, NEW_CONNECTION)
    say(f"busy: starting {args.busy} spinning sandboxes, then a {args.window_s:g} s window")
    busy_ids = start_busy(server, api, args.busy)
    time.sleep(SETTLE_S)
    busy = measure_cpu(server.process.pid, args.window_s)
    say(
        f"machine busy: {idle.host_busy_pct:.0f} % idle window, {busy.host_busy_pct:.0f} % busy"
        f" window; boxes' mean cpuUsedPct {mean_box_cpu_pct(api, busy_ids):.0f} %"
    )
    return [
        latency_row("create: POST /sandboxes -> 201", creates.to_201_ms, CREATE_TARGET_MS),
        latency_row(
            "create: POST -> first SDK command", creates.to_first_command_ms, CREATE_TARGET_MS
        ),
        latency_row("create from a built template -> 201", built.to_201_ms, CREATE_TARGET_MS),
        latency_row(
            "create from a built template -> command",
            built.to_first_command_ms,
            CREATE_TARGET_MS,
        ),
        build_row(build_s),
        latency_row("GET /sandboxes/{id}, keep-alive", gets_ms, GET_TARGET_MS),
        latency_row("create: POST -> 201, new connection", creates_new.to_201_ms, None),
        latency_row("GET /sandboxes/{id}, new connection", gets_new_ms, None),
        cpu_row("sandboxd CPU, no sandboxes", idle),
        cpu_row(f"sandboxd CPU, {args.busy} busy sandboxes", busy),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--creates", type=int, default=30, help="creates measured (default 30)")
    parser.add_argument("--gets", type=int, default=500, help="GETs measured (default 500)")
    parser.add_argument("--busy", type=int, default=20, help="busy sandboxes (default 20)")
    parser.add_argument(
        "--window-s", type=float, default=60.0, help="each CPU window, seconds (default 60)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    say(machine())
    rows = run(args, say)
    print(render(rows))


if __name__ == "__main__":
    main()
