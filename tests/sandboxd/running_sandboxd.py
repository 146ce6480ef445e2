"""Moved to `sandboxd.testing` (bench/ uses it too); this name stays while other branches
still import it from here."""

from sandboxd.testing import (
    READY_LINE,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    RunningSandboxd,
    api_client,
    running_sandboxd,
    stop,
)
from sandboxd.testing import SOURCE_ROOT as REPOSITORY

__all__ = [
    "READY_LINE",
    "REPOSITORY",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "RunningSandboxd",
    "api_client",
    "running_sandboxd",
    "stop",
]
