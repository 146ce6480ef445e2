"""An agent that is not box root (a plain subprocess here, as in reduced isolation) refuses
every request made as "root" with a reason, and does nothing of it; the default user's
requests are unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandboxd.agent import AgentClient, AgentError

pytestmark = pytest.mark.anyio
TIMEOUT_S = 15


async def test_root_requests_are_refused_saying_why(agent: AgentClient, home: Path) -> None:
    root = agent.as_user("root")
    attempts = {
        "start": root.start_process("/bin/true"),
        "write": root.write_file("made-as-root.txt", b"x"),
        "read": root.read_file("anything"),
        "stat": root.stat("."),
        "list_dir": root.list_dir("."),
        "make_dir": root.make_dir("root-dir"),
        "move": root.move("a", "b"),
        "remove": root.remove("a"),
        "watch_start": root.watch_start(".", recursive=False, include_entry=False),
    }
    async with asyncio.timeout(TIMEOUT_S):
        for name, attempt in attempts.items():
            with pytest.raises(AgentError) as refused:
                await attempt
            assert refused.value.code == "permission_denied", name
            assert "no root" in refused.value.message and "reduced isolation" in (
                refused.value.message
            ), name
        listing = [page async for page in agent.list_dir_pages(".")]  # the user: as before

    assert not (home / "made-as-root.txt").exists()
    assert not (home / "root-dir").exists()
    assert listing == [[]]


async def test_an_unknown_user_is_refused(agent: AgentClient) -> None:
    with pytest.raises(ValueError):
        agent.as_user("nobody")
    async with asyncio.timeout(TIMEOUT_S):
        with pytest.raises(AgentError) as refused:
            await agent._channel.call("stat", {"path": ".", "user": "nobody"})
    assert refused.value.code == "invalid_argument"
