"""The sandboxd command line: settings come from SANDBOXD_* variables (see the README)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from sandboxd.config import ConfigError, load_settings
from sandboxd.server import serve


def main(argv: Sequence[str] | None = None) -> int:
    """Run sandboxd in the foreground until SIGINT or SIGTERM; returns the exit code."""
    if argv:
        print("sandboxd takes no arguments; it reads SANDBOXD_* variables", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except ConfigError as bad:
        print(f"sandboxd: {bad}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(settings))
    except OSError as cannot:  # a port in use, an unwritable data directory
        print(f"sandboxd: cannot start: {cannot}", file=sys.stderr)
        return 1
    return 0
