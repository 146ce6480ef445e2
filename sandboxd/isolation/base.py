"""The contract between the sandbox manager and an isolation level.

An `Isolation` launches one `Box` per sandbox: a process tree running `command` (the
in-sandbox agent) in its own namespaces, with the spec's limits. The manager talks to the
agent through the box's process stdin/stdout, and asks the box to freeze, thaw, measure
and kill itself. Nothing here knows about HTTP or the E2B API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from sandboxd.isolation.egress import Egress

IsolationLevel = Literal["full", "reduced"]

# Where the agent script is visible inside every sandbox (read-only).
AGENT_PATH_INSIDE = "/opt/sandboxd/agent.py"
# The sudo client (agent/sudo.py): its directory is the first of the box's PATH.
SUDO_DIR_INSIDE = "/opt/sandboxd/bin"
SUDO_PATH_INSIDE = f"{SUDO_DIR_INSIDE}/sudo"
# The sandbox user's home inside the sandbox, and its uid/gid there.
SANDBOX_HOME = "/home/user"
SANDBOX_UID = 1000
SANDBOX_GID = 1000


@dataclass(frozen=True)
class BoxSpec:
    """What to build: limits come from the create request and the template."""

    sandbox_id: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    max_processes: int
    env_vars: dict[str, str] = field(default_factory=dict)
    hostname: str = "e2b"
    # The way out (network.py); None: the box has its own loopback and nothing else.
    egress: Egress | None = None


@dataclass(frozen=True)
class BoxUsage:
    """One reading of a box's usage. `cpu_used_pct` is 0-100 of the box's vCPUs since the
    previous reading; memory excludes page cache (`mem_cache_bytes` is separate)."""

    cpu_used_pct: float
    mem_used_bytes: int
    mem_cache_bytes: int
    mem_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class OomKill:
    """The kernel (or, in reduced mode, the box) killed a process for want of memory."""

    sandbox_id: str
    at: datetime  # UTC
    pid: int | None  # host PID as the kernel names it; None when unknown
    process_name: str | None
    memory_limit_bytes: int


class Box(Protocol):
    """One running sandbox, host side."""

    sandbox_id: str
    process: asyncio.subprocess.Process  # the launched agent: its stdin/stdout are the channel

    async def freeze(self) -> None:
        """Stop every process of the box (no CPU while frozen, memory kept)."""

    async def thaw(self) -> None:
        """Resume a frozen box."""

    async def kill(self) -> None:
        """Kill every process of the box, frozen or not. Idempotent."""

    async def destroy(self) -> None:
        """After `kill`: remove what the box used on the host (cgroups, mounts, files)."""

    def usage(self) -> BoxUsage:
        """Usage now; CPU since the previous call."""

    def oom_kill_count(self) -> int:
        """OOM kills inside this box so far (the kernel's counter where there is one)."""


class Isolation(Protocol):
    """An isolation level: how boxes are made on this machine."""

    level: IsolationLevel
    # Guarantees missing at this level, said at start, in /health and in sandbox details.
    limitations: Sequence[str]

    async def launch(self, spec: BoxSpec, command: Sequence[str]) -> Box:
        """Start `command` (argv inside the box, e.g. the agent) in a new box."""

    async def cleanup_leftovers(self) -> list[str]:
        """Remove what a dead run left behind (processes, cgroups, mounts); say what."""

    def on_oom(self, callback: Callable[[OomKill], None]) -> None:
        """Call `callback` (from any thread) for every OOM kill detected in any box."""

    def close(self) -> None:
        """Stop background watchers."""


def agent_script_on_host() -> Path:
    """The agent script that every box binds read-only at AGENT_PATH_INSIDE."""
    return Path(__file__).resolve().parent.parent / "agent" / "agent.py"


def sudo_script_on_host() -> Path:
    """The sudo client that bwrap boxes bind read-only at SUDO_PATH_INSIDE."""
    return Path(__file__).resolve().parent.parent / "agent" / "sudo.py"
