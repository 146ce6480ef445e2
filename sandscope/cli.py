"""The `sandscope` command: `run` (the monitor), `collect`, `status`, `sandboxd`,
`hash-password`, and `api` for single E2B calls."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import IO

from e2bapi import actions
from e2bapi.errors import E2BError
from sandscope import __version__
from sandscope.api_command import (
    EXIT_API_ERROR,
    EXIT_USAGE,
    UsageError,
    add_api_parser,
    run_api_command,
)
from sandscope.clients import open_client
from sandscope.settings import Settings, SettingsError, describe, load_settings
from sandscope.target import TargetError, require_target


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="sandscope", description="Watch and operate E2B sandboxes."
    )
    parser.add_argument("--version", action="version", version=f"sandscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    run = commands.add_parser(
        "run",
        help="the monitor: collectors and dashboard (and, without E2B_API_KEY, sandboxd and "
        "the demo sandboxes)",
    )
    run.add_argument(
        "--no-demo",
        action="store_true",
        help="start no demo sandboxes on the local sandboxd (as SANDSCOPE_DEMO=0)",
    )
    commands.add_parser(
        "status", help="show the configuration, which API it finds, and that API's health"
    )
    collect = commands.add_parser(
        "collect",
        help="collect metrics, events and logs into the DuckDB file, without the UI",
    )
    collect.add_argument(
        "--once", action="store_true", help="run every job once, then exit (1 if one failed)"
    )
    commands.add_parser(
        "sandboxd", help="run sandboxd, the local E2B-compatible runtime (SANDBOXD_* settings)"
    )
    commands.add_parser(
        "hash-password",
        help="read a password (twice, without echo) and print its hash for .streamlit/secrets.toml",
    )
    add_api_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sandscope` console script; returns the exit code."""
    arguments = build_parser().parse_args(argv)
    if arguments.command == "sandboxd":
        # Imported here: the monitor's commands need none of the runtime's dependencies.
        from sandboxd.cli import main as sandboxd_main

        return sandboxd_main([])
    if arguments.command == "hash-password":
        from sandscope.password_command import run_hash_password

        return run_hash_password(sys.stdin.isatty())
    try:
        settings = load_settings()
    except SettingsError as bad_setting:
        print(f"sandscope: {bad_setting}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if arguments.command == "run":
        # Imported here: Streamlit, DuckDB and the scheduler load only for the monitor.
        from sandscope.run_command import RunOptions, run_monitor

        return run_monitor(settings, sys.stdout, sys.stderr, RunOptions(demo=not arguments.no_demo))
    if arguments.command == "status":
        return show_status(settings, sys.stdout)
    if arguments.command == "collect":
        # Imported here: the other commands need neither the scheduler nor DuckDB.
        from sandscope.collect_command import run_collect

        return run_collect(settings, sys.stdout, sys.stderr, once=arguments.once)
    return call_api(settings, arguments.action, arguments.json_args)


def call_api(settings: Settings, action_name: str, json_args: str) -> int:
    """`sandscope api`: errors on stderr, exit 1 for the API's, 2 for the caller's (or when
    there is no API to call; `health` needs no key)."""
    try:
        target = require_target(settings, key_needed=action_name != "health")
    except TargetError as no_target:
        print(f"sandscope: {no_target}", file=sys.stderr)
        return EXIT_USAGE
    with open_client(target.applied_to(settings)) as client:
        try:
            run_api_command(client, action_name, json_args)
        except UsageError as usage:
            print(f"sandscope api {usage}", file=sys.stderr)
            return EXIT_USAGE
        except E2BError as failure:
            print(f"sandscope: {failure}", file=sys.stderr)
            return EXIT_API_ERROR
    return 0


def show_status(settings: Settings, out: IO[str]) -> int:
    """`sandscope status`: print the configuration, the API it finds and its health; 0 when
    an API was found (healthy or not), 2 when none was (the line says what to do)."""
    out.write("sandscope configuration:\n")
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        out.write(f"  {name:<{width}}  {value}\n")
    try:
        target = require_target(settings)
    except TargetError as no_target:
        out.write(f"API: none found. {no_target}\n")
        return EXIT_USAGE
    out.write(f"API: {target.describe()}\n")
    with open_client(target.applied_to(settings)) as client:
        try:
            health = client.run(actions.check_health())
        except E2BError as failure:
            out.write(f"API {target.api_url}: unreachable ({failure})\n")
            return 0
    state = "healthy" if health.healthy else "unhealthy"
    out.write(f"API {target.api_url}: {state} ({health.status_code} {health.detail})\n")
    return 0
