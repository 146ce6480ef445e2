"""How envd finds a live sandbox: the manager's records seen as envd targets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sandboxd.agent import AgentClient
from sandboxd.envd.signed_links import TargetLister
from sandboxd.envd.target import EnvdTarget, Resolver
from sandboxd.manager import LiveSandbox, SandboxManager


@dataclass(frozen=True)
class _LiveTarget:
    live: LiveSandbox

    @property
    def agent(self) -> AgentClient:
        return self.live.agent

    @property
    def access_token(self) -> str | None:
        return self.live.record.access_token

    @property
    def state(self) -> Literal["running", "paused"]:
        return "paused" if self.live.record.state == "paused" else "running"


def _ending(live: LiveSandbox) -> bool:
    """Whether the box's agent has exited: the manager is ending it, and envd answers as for
    a box already gone. The SDK asks /health after a stream fails, and only a "not found"
    there makes it say the box was killed (e2b/envd/rpc.py), even in the moment before the
    manager has removed the box."""
    return live.agent.closed.done()


def envd_resolver(manager: SandboxManager) -> Resolver:
    """A resolver giving envd the running or paused sandbox with that ID, or None."""

    def resolve(sandbox_id: str) -> EnvdTarget | None:
        live = manager.live.get(sandbox_id)
        return None if live is None or _ending(live) else _LiveTarget(live)

    return resolve


def envd_targets(manager: SandboxManager) -> TargetLister:
    """Every running or paused sandbox with its ID, for links that name no sandbox."""

    def every() -> Iterator[tuple[str, EnvdTarget]]:
        for sandbox_id, live in list(manager.live.items()):
            if not _ending(live):
                yield sandbox_id, _LiveTarget(live)

    return every
