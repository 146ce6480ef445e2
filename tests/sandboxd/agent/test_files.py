"""File operations through AgentClient against a real agent subprocess."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandboxd.agent import AgentClient, AgentError
from sandboxd.agent.agent import LIST_MAX_BYTES, LIST_MAX_ENTRIES

pytestmark = pytest.mark.anyio
TIMEOUT_S = 15


async def test_a_5_mb_file_round_trips(agent: AgentClient, home: Path) -> None:
    payload = os.urandom(5 << 20)
    async with asyncio.timeout(TIMEOUT_S):
        written = await agent.write_file("big/nested/blob.bin", payload)
        read_back = await agent.read_file(str(home / "big/nested/blob.bin"))

    assert read_back == payload
    assert (home / "big/nested/blob.bin").read_bytes() == payload
    assert written.path == str(home / "big/nested/blob.bin")
    assert (written.name, written.type, written.size) == ("blob.bin", "file", len(payload))


async def test_writes_stream_from_an_async_iterable(agent: AgentClient, home: Path) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for n in range(5):
            yield str(n).encode() * 1000

    await agent.write_file("streamed.txt", pieces())
    chunks = [chunk async for chunk in agent.read_file_chunks("streamed.txt", chunk_bytes=1500)]

    assert b"".join(chunks) == b"".join(str(n).encode() * 1000 for n in range(5))
    assert max(len(c) for c in chunks) == 1500


async def test_empty_files_and_overwrites(agent: AgentClient, home: Path) -> None:
    await agent.write_file("f.txt", b"long original content")
    await agent.write_file("f.txt", b"short")
    await agent.write_file("empty", b"")

    assert await agent.read_file("f.txt") == b"short"
    assert await agent.read_file("empty") == b""


async def test_stat_reports_what_envd_reports(agent: AgentClient, home: Path) -> None:
    (home / "a.txt").write_bytes(b"12345")
    os.chmod(home / "a.txt", 0o640)
    os.symlink(home / "a.txt", home / "link")
    entry = await agent.stat("a.txt")
    link = await agent.stat("link")
    directory = await agent.stat("~")

    assert (entry.type, entry.size, entry.mode) == ("file", 5, 0o640)
    assert entry.permissions == "-rw-r-----"
    assert entry.mtime_ns == (home / "a.txt").stat().st_mtime_ns
    assert (link.type, link.is_symlink, link.symlink_target) == ("file", True, str(home / "a.txt"))
    assert link.permissions.startswith("L")
    assert (directory.path, directory.type, directory.permissions[0]) == (str(home), "dir", "d")


async def test_list_dir_goes_depth_levels_deep(agent: AgentClient, home: Path) -> None:
    (home / "d/e/f").mkdir(parents=True)
    (home / "d/x.txt").write_text("x")
    (home / "d/e/y.txt").write_text("y")

    shallow = [e.path for e in await agent.list_dir("d")]
    deep = [e.path for e in await agent.list_dir("d", depth=2)]

    assert shallow == [str(home / "d/e"), str(home / "d/x.txt")]
    assert deep == [str(home / p) for p in ("d/e", "d/e/f", "d/e/y.txt", "d/x.txt")]


async def test_list_dir_walks_any_depth_in_pre_order(agent: AgentClient, home: Path) -> None:
    # 200 levels: deep, yet shallow enough for pytest's recursive clean-up of tmp_path.
    chain = home / "chain"
    (chain / "/".join(["d"] * 200)).mkdir(parents=True)
    (chain / "d" / "z.txt").write_text("z")

    async with asyncio.timeout(TIMEOUT_S):
        listed = [e.path for e in await agent.list_dir("chain", depth=1_000_000)]

    assert len(listed) == 201
    assert listed[:2] == [str(chain / "d"), str(chain / "d/d")]  # a child before a sibling
    assert listed[-1] == str(chain / "d/z.txt")


async def test_list_dir_refuses_more_entries_than_the_limit(agent: AgentClient, home: Path) -> None:
    many = home / "many"
    many.mkdir()
    for index in range(LIST_MAX_ENTRIES + 1):
        (many / f"f{index}").touch()

    with pytest.raises(AgentError) as failure:
        async with asyncio.timeout(TIMEOUT_S):
            await agent.list_dir("many")

    assert failure.value.code == "invalid_argument"
    assert "smaller depth" in failure.value.message


async def test_list_dir_refuses_more_json_than_the_limit(agent: AgentClient, home: Path) -> None:
    # Few entries, long paths: it is the bytes that count, not only the entries.
    deep = home / "long"
    name = "n" * 250
    for level in range(12):
        deep = deep / f"d{level}{name}"
        deep.mkdir(parents=True)
        for index in range(LIST_MAX_BYTES // 1_000 // 12):  # ~2,000 entries of ~2 KB
            (deep / f"f{index}{name}").touch()

    with pytest.raises(AgentError) as failure:
        async with asyncio.timeout(TIMEOUT_S):
            await agent.list_dir("long", depth=100)

    assert failure.value.code == "invalid_argument"


async def test_make_dir_move_remove(agent: AgentClient, home: Path) -> None:
    made = await agent.make_dir("p/q/r")
    with pytest.raises(AgentError) as again:
        await agent.make_dir("p/q/r")
    (home / "p/q/r/file").write_text("z")
    moved = await agent.move("p/q", "elsewhere/q2")
    await agent.remove("elsewhere")

    assert (made.type, made.path) == ("dir", str(home / "p/q/r"))
    assert again.value.code == "already_exists"
    assert moved.path == str(home / "elsewhere/q2") and moved.type == "dir"
    assert not (home / "elsewhere").exists() and (home / "p").is_dir()


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        (lambda a: a.read_file("missing"), "not_found"),
        (lambda a: a.read_file("."), "invalid_argument"),
        (lambda a: a.stat("missing/deeper"), "not_found"),
        (lambda a: a.list_dir("missing"), "not_found"),
        (lambda a: a.list_dir("plain"), "invalid_argument"),
        (lambda a: a.remove("missing"), "not_found"),
        (lambda a: a.move("missing", "x"), "not_found"),
        (lambda a: a.make_dir("plain"), "invalid_argument"),
        (lambda a: a.write_file("plain/child", b"x"), "already_exists"),
        (lambda a: a.write_file("/sys/kernel/new-file", b"x"), "permission_denied"),
        (lambda a: a.write_file("/dev/full", b"x" * 100), "resource_exhausted"),
        (lambda a: a.write_file("/dev/full", b"x" * (2 << 20)), "resource_exhausted"),
    ],
)
async def test_errors_carry_codes(agent: AgentClient, home: Path, operation, code) -> None:
    (home / "plain").write_text("a file")
    with pytest.raises(AgentError) as failure:
        async with asyncio.timeout(TIMEOUT_S):
            await operation(agent)

    assert failure.value.code == code


async def test_abandoned_reads_do_not_leak_handles(agent: AgentClient, home: Path) -> None:
    (home / "f").write_bytes(b"x" * 10_000)
    for _ in range(300):  # more than the agent's open-file limit
        chunks = agent.read_file_chunks("f", chunk_bytes=100)
        assert await anext(chunks) == b"x" * 100
        await chunks.aclose()

    assert await agent.read_file("f") == b"x" * 10_000


async def test_a_listing_comes_in_pages_and_frees_its_handle(
    agent: AgentClient, home: Path
) -> None:
    names = [f"{index:03d}" + "n" * 200 for index in range(800)]  # ~600 B each: 2 pages
    (home / "pages").mkdir()
    for name in names:
        (home / "pages" / name).touch()

    async with asyncio.timeout(TIMEOUT_S):
        pages = [page async for page in agent.list_dir_pages("pages")]
        for _ in range(300):  # more than the agent's open-handle limit, each abandoned
            walk = agent.list_dir_pages("pages", page_bytes=1)  # one entry a page
            await anext(walk)
            await walk.aclose()
        whole = await agent.list_dir("pages")

    assert len(pages) > 1
    assert [e.name for page in pages for e in page] == names
    assert [e.name for e in whole] == names
