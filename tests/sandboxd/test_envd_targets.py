"""envd's view of the manager's sandboxes: a box whose agent has exited is already gone to
envd, so the SDK's health probe after a broken stream hears "not found" and says the box was
killed, even before the manager has finished ending it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from sandboxd.envd_targets import envd_resolver, envd_targets


def live_box(agent_exited: bool, loop: asyncio.AbstractEventLoop) -> Any:
    closed: asyncio.Future[None] = loop.create_future()
    if agent_exited:
        closed.set_result(None)
    record = SimpleNamespace(access_token="token", state="running")
    return SimpleNamespace(record=record, agent=SimpleNamespace(closed=closed), box=None)


def test_a_box_whose_agent_exited_is_not_found() -> None:
    loop = asyncio.new_event_loop()
    try:
        manager: Any = SimpleNamespace(
            live={"alive": live_box(False, loop), "ending": live_box(True, loop)}
        )
        resolve, every = envd_resolver(manager), envd_targets(manager)

        assert resolve("alive") is not None
        assert resolve("ending") is None
        assert [sandbox_id for sandbox_id, _ in every()] == ["alive"]  # nor for signed links
    finally:
        loop.close()
