"""`sandscope run` (what `make run` runs): the whole monitor in one process.

It watches the API `sandscope.target` finds. Where that finds none (no E2B_API_KEY, no
sandboxd serving from SANDSCOPE_SANDBOXD_DATA_DIR), it starts sandboxd there (see
`local_sandboxd`), so later commands find it through its endpoints file. On a local sandboxd it
starts the demo sandboxes; on E2B, neither. The collectors and the dashboard share this
process, which owns the DuckDB file.

Start order: logins and the bind-address rule (before anything listens), the store (a file
in use stops everything at once, before a second sandboxd could touch the first one's data),
sandboxd, the collector, the actions, the demo, the dashboard. Ctrl-C or SIGTERM stops the
dashboard, then the rest in reverse order, one printed line per step; a signal while
starting stops what has started so far.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from dashboard.actions.runner import ActionRunner
from dashboard.serving import runtime
from dashboard.serving.auth import AuthConfigError, Logins, check_exposure, load_logins
from dashboard.serving.server import APP_PATH, DashboardError, DashboardServer
from dashboard.templates.rates import CostRates
from sandscope.clients import open_client
from sandscope.collect_command import RunPrinter, build_collector, quiet_library_logs
from sandscope.demo import Demo, DemoTarget, DemoTimings
from sandscope.local_sandboxd import (
    LocalSandboxd,
    SandboxdConfigError,
    SandboxdError,
    use_or_start,
)
from sandscope.settings import DEFAULT_SECRETS_FILE, Settings
from sandscope.target import Target, TargetError, find_target, local_target
from storage import MonitorStore, StoreError

EXIT_OK = 0
EXIT_FAILED = 1  # the store is in use, sandboxd or the dashboard cannot start
EXIT_SETTINGS = 2  # refused by the configuration (logins, bind address, SANDBOXD_*)


@dataclass(frozen=True)
class RunOptions:
    """What the command line and tests choose beyond the settings."""

    demo: bool = True  # False with --no-demo
    app_path: Path = APP_PATH
    secrets_file: Path = DEFAULT_SECRETS_FILE
    demo_timings: DemoTimings = field(default_factory=DemoTimings)


class _Interrupted(Exception):
    """SIGINT or SIGTERM came while starting."""


class StartError(Exception):
    """A part could not start; `code` is the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def run_monitor(
    settings: Settings, out: IO[str], err: IO[str], options: RunOptions | None = None
) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean stop, 1 when a part cannot start (the
    store in use, sandboxd, the port), 2 when the configuration refuses to start."""
    options = options or RunOptions()
    try:
        logins = load_logins(options.secrets_file, settings.session_idle_s)
        check_exposure(settings.dashboard_address, logins)
    except AuthConfigError as refused:
        print(f"sandscope: {refused}", file=err)
        return EXIT_SETTINGS
    quiet_library_logs()
    printer = RunPrinter(out)
    server = DashboardServer(settings.dashboard_address, settings.dashboard_port, options.app_path)
    signals = _Signals(server)
    code = EXIT_OK
    with contextlib.ExitStack() as started:
        try:
            _start_parts(settings, logins, options, printer, started, signals.received)
            _serve(server, printer)
            printer.say("stopping: dashboard stopped")
        except _Interrupted:
            printer.say("stopping: interrupted while starting")
        except (StartError, DashboardError) as failed:
            print(f"sandscope: {failed}", file=err)
            code = failed.code if isinstance(failed, StartError) else EXIT_FAILED
    signals.restore()
    printer.say("stopped")
    return code


def _serve(server: DashboardServer, printer: RunPrinter) -> None:
    """Serve until stopped; _Interrupted when stopped before it listened."""
    served = threading.Event()

    def on_ready(url: str) -> None:
        served.set()
        printer.say(f"sandscope dashboard: {url}")
        printer.say("Ctrl-C stops everything")

    server.run(on_ready)
    if not served.is_set():
        raise _Interrupted


def _start_parts(
    settings: Settings,
    logins: Logins,
    options: RunOptions,
    printer: RunPrinter,
    started: contextlib.ExitStack,
    interrupted: threading.Event,
) -> None:
    """Everything but the dashboard, each part's stop pushed on `started`; raises
    _Interrupted between parts once `interrupted` is set."""
    store = _open_store(settings)
    started.callback(store.close)  # a second close (after the collector's) does nothing
    _check(interrupted)
    target = _choose_target(settings, printer, started, interrupted)
    _check(interrupted)
    target_settings = target.applied_to(settings)
    collector = build_collector(store, target_settings, printer.print_trouble)
    collector.start()
    started.callback(_stop_step, printer, "collector stopped, store closed", collector.stop)
    poll_s = settings.poll_interval_s
    description = f"Watching {target.describe()}"
    printer.say(f"{description}, into {settings.db_path} every {poll_s:g} s")
    actions: ActionRunner | None = None
    if not settings.read_only:
        client = open_client(target_settings)
        started.callback(client.close)
        actions = ActionRunner(client, store)
    runtime.install(
        runtime.Monitor(
            store=store,
            actions=actions,
            logins=logins,
            poll_interval_s=poll_s,
            target_description=description,
            concurrency_limit=target.concurrency_limit,
            cost_rates=CostRates(settings.cost_per_vcpu_hour, settings.cost_per_gib_hour),
        )
    )
    started.callback(runtime.install, None)
    _check(interrupted)
    if target.is_local_sandboxd and settings.demo and options.demo:
        _start_demo(target, options.demo_timings, printer, started)


def _check(interrupted: threading.Event) -> None:
    if interrupted.is_set():
        raise _Interrupted


def _open_store(settings: Settings) -> MonitorStore:
    try:
        return MonitorStore.open(settings.db_path)
    except StoreError as unusable:
        raise StartError(str(unusable)) from None


def _choose_target(
    settings: Settings,
    printer: RunPrinter,
    started: contextlib.ExitStack,
    interrupted: threading.Event,
) -> Target:
    """`find_target`'s API; a local sandboxd through `use_or_start`, which also starts one
    (stopped with `started`) where `find_target` found none."""
    try:
        found = find_target(settings)
    except TargetError as unusable:
        raise StartError(str(unusable), EXIT_SETTINGS) from None
    if isinstance(found, Target) and not found.is_local_sandboxd:
        return found
    # A running one is taken through use_or_start too: its LocalSandboxd carries the
    # concurrency limit the overview draws.
    sandboxd = _use_or_start_sandboxd(settings, printer, started, interrupted)
    return local_target(sandboxd, settings)


def _use_or_start_sandboxd(
    settings: Settings,
    printer: RunPrinter,
    started: contextlib.ExitStack,
    interrupted: threading.Event,
) -> LocalSandboxd:
    """The sandboxd serving from SANDSCOPE_SANDBOXD_DATA_DIR, started here if none does."""
    try:
        sandboxd = use_or_start(settings.sandboxd_data_dir, cancel=interrupted)
    except SandboxdError as failed:
        _check(interrupted)
        code = EXIT_SETTINGS if isinstance(failed, SandboxdConfigError) else EXIT_FAILED
        raise StartError(str(failed), code) from None
    if sandboxd.started_here:
        started.callback(_stop_sandboxd, printer, sandboxd)
        isolation = sandboxd.isolation.split(" (", 1)[0]
        printer.say(
            f"E2B_API_KEY is not set: started sandboxd at {sandboxd.api_url} "
            f"(isolation: {isolation}; log: {sandboxd.log_path})"
        )
    else:
        printer.say(
            f"E2B_API_KEY is not set: using the sandboxd already running at "
            f"{sandboxd.api_url} (data in {sandboxd.data_dir}); it stays running after"
        )
    return sandboxd


def _start_demo(
    target: Target,
    timings: DemoTimings,
    printer: RunPrinter,
    started: contextlib.ExitStack,
) -> None:
    assert target.sandbox_url is not None and target.api_key is not None  # a local sandboxd
    demo = Demo(
        DemoTarget(target.api_url, target.sandbox_url, target.api_key.get_secret_value()),
        printer.say,
        timings,
    )
    demo.start()
    printer.say(
        "demo: starting 5 sandboxes (cpu, memory, disk, idle, timeout); "
        "`sandscope run --no-demo` or SANDSCOPE_DEMO=0 leaves them out"
    )

    def stop_demo() -> None:
        finished = demo.stop()
        printer.say(
            "stopping: demo stopped"
            if finished
            else "stopping: demo stopped (a call in progress is abandoned)"
        )

    started.callback(stop_demo)


def _stop_sandboxd(printer: RunPrinter, sandboxd: LocalSandboxd) -> None:
    code = sandboxd.stop()
    ended = "its sandboxes killed" if code == 0 else f"exit code {code}; see {sandboxd.log_path}"
    printer.say(f"stopping: sandboxd stopped ({ended})")


def _stop_step(printer: RunPrinter, done: str, stop: Callable[[], object]) -> None:
    stop()
    printer.say(f"stopping: {done}")


class _Signals:
    """SIGINT and SIGTERM: while starting, the start stops at the next part (what started is
    stopped); while serving, the dashboard stops and the rest follows; while stopping, the
    stop is under way already. The handler only sets flags: an exception raised from it
    could land anywhere, in a DuckDB query for one (which would turn it into another)."""

    def __init__(self, server: DashboardServer) -> None:
        self.received = threading.Event()
        self._server = server
        self._previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.set()
        self._server.stop()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
