"""Watching directories through the official SDK: the sync SDK's polling watcher
(CreateWatcher / GetWatcherEvents / RemoveWatcher) and the async SDK's WatchDir stream,
served from inotify in a real agent."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2b import AsyncSandbox, Sandbox
from e2b.exceptions import FileNotFoundException, SandboxException
from e2b.sandbox.filesystem.watch_handle import FilesystemEvent, FilesystemEventType
from e2b.sandbox_sync.filesystem.watch_handle import WatchHandle

from sandboxd.agent import AgentError
from tests.sandboxd.envd.conftest import TIMEOUT_S, EnvdHarness

Kind = FilesystemEventType
CREATE, WRITE, REMOVE, RENAME, CHMOD = Kind.CREATE, Kind.WRITE, Kind.REMOVE, Kind.RENAME, Kind.CHMOD


def polled_until(
    handle: WatchHandle, done: Callable[[list[tuple[str, FilesystemEventType]]], bool]
) -> list[tuple[str, FilesystemEventType]]:
    """(name, type) of every event polled until `done` holds of them (TIMEOUT_S at most)."""
    seen: list[tuple[str, FilesystemEventType]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while not done(seen):
        assert time.monotonic() < deadline, f"events so far: {seen}"
        seen += [(e.name, e.type) for e in handle.get_new_events()]
    return seen


def async_sandbox(sandbox: Sandbox) -> AsyncSandbox:
    return AsyncSandbox(
        sandbox_id=sandbox.sandbox_id,
        sandbox_domain=None,
        envd_version=sandbox._envd_version,
        envd_access_token=sandbox._envd_access_token,
        traffic_access_token=None,
        connection_config=sandbox.connection_config,
    )


def test_sync_watch_reports_create_write_chmod_rename_remove(sandbox: Sandbox, home: Path) -> None:
    (home / "watched").mkdir()
    handle = sandbox.files.watch_dir("watched")
    try:
        (home / "watched/a.txt").write_text("one")
        os.chmod(home / "watched/a.txt", 0o600)
        os.rename(home / "watched/a.txt", home / "watched/b.txt")
        (home / "watched/b.txt").unlink()

        seen = polled_until(handle, lambda s: ("b.txt", REMOVE) in s)
    finally:
        handle.stop()

    assert seen == [
        ("a.txt", CREATE),
        ("a.txt", WRITE),
        ("a.txt", CHMOD),
        ("a.txt", RENAME),
        ("b.txt", CREATE),
        ("b.txt", REMOVE),
    ]


def test_sync_watch_is_recursive_only_when_asked(sandbox: Sandbox, home: Path) -> None:
    (home / "tree/old").mkdir(parents=True)
    flat = sandbox.files.watch_dir("tree")
    deep = sandbox.files.watch_dir("tree", recursive=True)
    try:
        (home / "tree/old/in-old.txt").write_text("x")
        (home / "tree/new").mkdir()
        (home / "tree/new/in-new.txt").write_text("y")
        (home / "tree/top.txt").write_text("z")

        deep_seen = polled_until(deep, lambda s: ("top.txt", CREATE) in s)
        flat_seen = polled_until(flat, lambda s: ("top.txt", CREATE) in s)
    finally:
        flat.stop()
        deep.stop()

    assert ("old/in-old.txt", CREATE) in deep_seen and ("new/in-new.txt", CREATE) in deep_seen
    assert ("new", CREATE) in flat_seen
    assert not [name for name, _ in flat_seen if "/" in name]


def test_events_carry_the_entry_when_asked(sandbox: Sandbox, home: Path) -> None:
    handle = sandbox.files.watch_dir(".", include_entry=True)
    try:
        (home / "with-entry.txt").write_text("12345")
        deadline = time.monotonic() + TIMEOUT_S
        events: list[FilesystemEvent] = []
        while not any(e.type == WRITE for e in events):
            assert time.monotonic() < deadline
            events += handle.get_new_events()
    finally:
        handle.stop()

    created = next(e for e in events if e.type == CREATE)
    assert created.name == "with-entry.txt"
    assert created.entry is not None and created.entry.path == str(home / "with-entry.txt")


def test_a_missing_directory_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(FileNotFoundException):
        sandbox.files.watch_dir("no/such/dir")


def test_a_stopped_watcher_is_gone(sandbox: Sandbox, envd: EnvdHarness) -> None:
    handle = sandbox.files.watch_dir(".")
    handle.stop()

    with pytest.raises(SandboxException):
        handle.get_new_events()  # the SDK knows
    with pytest.raises(AgentError, match="not found"):  # and so does the agent
        envd.run(envd.agent.watch_take(int(handle._watcher_id)))


def test_async_watch_streams_events_and_is_removed_when_stopped(
    sandbox: Sandbox, envd: EnvdHarness, home: Path
) -> None:
    (home / "streamed").mkdir()

    async def scenario() -> tuple[list[tuple[str, FilesystemEventType]], list[Any]]:
        box = async_sandbox(sandbox)
        seen: list[tuple[str, FilesystemEventType]] = []
        exits: list[Any] = []
        got_create, got_remove = asyncio.Event(), asyncio.Event()

        def on_event(event: FilesystemEvent) -> None:
            seen.append((event.name, event.type))
            {CREATE: got_create, REMOVE: got_remove}.get(event.type, asyncio.Event()).set()

        async with asyncio.timeout(TIMEOUT_S):
            handle = await box.files.watch_dir(
                "streamed", on_event, on_exit=exits.append, recursive=True
            )
            (home / "streamed/sub").mkdir()
            await got_create.wait()  # the new directory is watched by now
            (home / "streamed/sub/f.txt").write_text("data")
            (home / "streamed/sub/f.txt").unlink()
            await got_remove.wait()
            await handle.stop()  # type: ignore[no-untyped-call]  # the SDK's, untyped
        return seen, exits

    seen, exits = asyncio.run(scenario())

    assert seen[:1] == [("sub", CREATE)] and ("sub/f.txt", REMOVE) in seen
    assert exits == [None]
    # The client went: the watcher (the first this agent made) is removed in the box.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            envd.run(envd.agent.watch_take(1))
        except AgentError as exc:
            assert exc.code == "not_found"
            break
        assert time.monotonic() < deadline, "the watcher outlived its stream"


def test_async_watch_of_a_missing_directory_is_not_found(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with asyncio.timeout(TIMEOUT_S):
            await async_sandbox(sandbox).files.watch_dir("missing", lambda _: None)

    with pytest.raises(FileNotFoundException):
        asyncio.run(scenario())


def test_an_async_watch_ends_with_an_error_when_the_box_ends(
    sandbox: Sandbox, envd: EnvdHarness
) -> None:
    async def scenario() -> list[Any]:
        exits: list[Any] = []
        ended = asyncio.Event()

        def on_exit(error: Any) -> None:
            exits.append(error)
            ended.set()

        async with asyncio.timeout(TIMEOUT_S):
            await async_sandbox(sandbox).files.watch_dir(".", lambda _: None, on_exit=on_exit)
            envd.run(envd.agent.aclose())  # the box's agent is gone, and its watchers with it
            await ended.wait()
        return exits

    [error] = asyncio.run(scenario())

    assert isinstance(error, Exception)


def test_a_real_box_streams_its_events_to_the_async_sdk(small_sandbox: Sandbox) -> None:
    async def scenario() -> list[tuple[str, FilesystemEventType]]:
        box = await AsyncSandbox.connect(small_sandbox.sandbox_id)
        seen: list[tuple[str, FilesystemEventType]] = []
        removed = asyncio.Event()

        def on_event(event: FilesystemEvent) -> None:
            seen.append((event.name, event.type))
            if event.type == REMOVE:
                removed.set()

        async with asyncio.timeout(TIMEOUT_S):
            await box.files.make_dir("/tmp/w")
            handle = await box.files.watch_dir("/tmp/w", on_event)
            await box.commands.run("echo x > /tmp/w/f && chmod 600 /tmp/w/f && rm /tmp/w/f")
            await removed.wait()
            await handle.stop()  # type: ignore[no-untyped-call]  # the SDK's, untyped
        return seen

    assert asyncio.run(scenario()) == [
        ("f", CREATE), ("f", WRITE), ("f", CHMOD), ("f", REMOVE)
    ]  # fmt: skip
