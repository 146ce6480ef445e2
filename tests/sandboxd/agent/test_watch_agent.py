"""The agent's watchers, op by op: a take that waits, one waiting take at a time, a watcher
stopped while a take waits, a queue that overflows into a watcher error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandboxd.agent import AgentClient, AgentError
from sandboxd.agent.agent import WATCH_QUEUE_MAX_EVENTS

pytestmark = pytest.mark.anyio
WAIT_S = 10.0  # far longer than any event takes: a take answered early was answered by one
OVERFLOW_TIMEOUT_S = 60.0  # the agent reads 10,001 events in about a second


async def test_a_waiting_take_is_answered_by_the_first_event(
    agent: AgentClient, home: Path
) -> None:
    watcher = await agent.watch_start(".", recursive=False, include_entry=False)
    take = asyncio.create_task(agent.watch_take(watcher, wait_s=WAIT_S))
    await asyncio.sleep(0)  # the take is sent before the file is made
    (home / "new.txt").touch()

    async with asyncio.timeout(WAIT_S / 2):
        page = await take

    assert [(e.name, e.type) for e in page.events][:1] == [("new.txt", "create")]


async def test_a_newer_take_answers_the_waiting_one_with_nothing(agent: AgentClient) -> None:
    watcher = await agent.watch_start(".", recursive=False, include_entry=False)
    first = asyncio.create_task(agent.watch_take(watcher, wait_s=WAIT_S))
    await asyncio.sleep(0)
    second = asyncio.create_task(agent.watch_take(watcher, wait_s=WAIT_S))

    async with asyncio.timeout(WAIT_S / 2):
        page = await first
    second.cancel()

    assert page.events == [] and page.more is False


async def test_stopping_a_watcher_ends_its_waiting_take(agent: AgentClient) -> None:
    watcher = await agent.watch_start(".", recursive=False, include_entry=False)
    take = asyncio.create_task(agent.watch_take(watcher, wait_s=WAIT_S))
    await asyncio.sleep(0)
    await agent.watch_stop(watcher)

    with pytest.raises(AgentError) as raised:
        async with asyncio.timeout(WAIT_S / 2):
            await take

    assert raised.value.code == "not_found"


async def test_an_overflowing_queue_gives_its_events_then_a_watcher_error(
    agent: AgentClient, home: Path
) -> None:
    watcher = await agent.watch_start(".", recursive=False, include_entry=False)
    for i in range(WATCH_QUEUE_MAX_EVENTS + 1):  # a create each, and one too many
        (home / str(i)).mkdir()

    taken = 0
    with pytest.raises(AgentError) as raised:
        async with asyncio.timeout(OVERFLOW_TIMEOUT_S):  # until the agent read every event
            while True:
                taken += len((await agent.watch_take(watcher)).events)

    assert taken == WATCH_QUEUE_MAX_EVENTS
    assert raised.value.code == "resource_exhausted" and "watcher error" in raised.value.message
