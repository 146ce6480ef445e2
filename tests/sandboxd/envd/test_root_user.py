"""`user="root"` through the official SDK (sync and async), as on E2B: commands run as box
root (uid 0 of the box's own user namespace) with exactly sudo's capabilities, in /root, and
file operations are done as box root, while the default user stays uid 1000."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from e2b import AsyncSandbox, PtySize, Sandbox, SandboxException
from e2b.sandbox.filesystem.filesystem import FileType

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="box root needs full isolation, which needs root"
)

CAP_NAMES = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
# Capabilities box root must never hold: they would let it reach the agent, the mounts or
# the network rules (CAP_NET_ADMIN 12, CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21).
FORBIDDEN_CAPS = {"CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21}


@pytest.fixture
def box(sdk_env: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=120)
    yield sandbox
    sandbox.kill()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.05)


def test_a_root_command_runs_as_box_root_in_roots_home(box: Sandbox) -> None:
    assert box.commands.run("id -u; id -g", user="root").stdout.split() == ["0", "0"]
    who = box.commands.run('echo "$HOME $USER $LOGNAME"; pwd', user="root").stdout
    assert who.splitlines() == ["/root root root", "/root"]
    assert box.commands.run("pwd", user="root", cwd="/tmp").stdout.strip() == "/tmp"
    # The default user is unchanged.
    mine = box.commands.run('id -u; echo "$HOME $USER"; pwd').stdout.splitlines()
    assert mine == ["1000", "/home/user user", "/home/user"]
    assert box.commands.run("id -u", user="user").stdout.strip() == "1000"


def test_a_root_commands_capabilities_are_sudos(box: Sandbox) -> None:
    def sets(user: str | None = None) -> dict[str, str]:
        lines = box.commands.run("grep ^Cap /proc/self/status", user=user).stdout.splitlines()
        return dict(line.split(":\t") for line in lines)

    as_root = sets("root")
    assert set(as_root) == set(CAP_NAMES)
    assert as_root == _sudo_sets(box)
    effective = int(as_root["CapEff"], 16)
    assert effective != 0
    assert {name for name, bit in FORBIDDEN_CAPS.items() if effective >> bit & 1} == set()
    assert sets() == dict.fromkeys(CAP_NAMES, "0000000000000000")  # the user still holds none


def _sudo_sets(box: Sandbox) -> dict[str, str]:
    lines = box.commands.run("sudo grep ^Cap /proc/self/status").stdout.splitlines()
    return dict(line.split(":\t") for line in lines)


def test_a_root_terminal(box: Sandbox) -> None:
    seen = bytearray()
    pty = box.pty.create(size=PtySize(rows=24, cols=80), user="root", timeout=30)
    box.pty.send_stdin(pty.pid, b"echo uid=$(id -u) at=$(pwd); exit\n")
    pty.wait(on_pty=seen.extend)
    assert b"uid=0 at=/root" in bytes(seen)


def test_files_as_root_are_box_roots(box: Sandbox) -> None:
    written = box.files.write("/root/a", "for root only", user="root")
    assert written.path == "/root/a"
    info = box.files.get_info("/root/a", user="root")
    assert (info.owner, info.group) == ("root", "root")
    ids = box.commands.run("stat -c '%u %g' /root/a", user="root").stdout.split()
    assert ids == ["0", "0"]
    assert box.files.read("/root/a", user="root") == "for root only"
    names = [entry.name for entry in box.files.list("/root", user="root")]
    assert "a" in names

    box.commands.run("chmod 600 /root/a", user="root")
    with pytest.raises(SandboxException) as refused:
        box.files.read("/root/a")  # the user may not read root's file
    assert "ermission" in str(refused.value)
    assert "a" not in [entry.name for entry in box.files.list("/root")]  # unreadable to it
    with pytest.raises(SandboxException):
        box.files.write("/root/b", "not yours")


def test_signed_links_for_root_read_and_write_as_root(sdk_env: None) -> None:
    secured = Sandbox.create(timeout=120, secure=True)
    try:
        secured.files.write("/root/linked.txt", "root's", user="root")
        secured.commands.run("chmod 600 /root/linked.txt", user="root")
        read = httpx.get(secured.download_url("/root/linked.txt", user="root"), timeout=30)
        as_user = httpx.get(secured.download_url("/root/linked.txt"), timeout=30)
        upload = secured.upload_url("/root/uploaded.txt", user="root")
        sent = httpx.post(upload, files={"file": ("uploaded.txt", b"up")}, timeout=30)
        owner = secured.files.get_info("/root/uploaded.txt", user="root").owner
    finally:
        secured.kill()

    assert (read.status_code, read.text) == (200, "root's")
    assert as_user.status_code == 403
    assert sent.status_code == 200 and owner == "root"


def test_relative_paths_as_root_land_in_roots_home(box: Sandbox) -> None:
    written = box.files.write("notes/rel.txt", "relative", user="root")
    assert written.path == "/root/notes/rel.txt"
    assert box.files.read("/root/notes/rel.txt", user="root") == "relative"
    assert box.files.get_info("notes", user="root").type == FileType.DIR
    # The user's relative paths still land in /home/user.
    assert box.files.write("rel.txt", "mine").path == "/home/user/rel.txt"


def test_make_dir_rename_remove_and_metadata_as_root(box: Sandbox) -> None:
    assert box.files.make_dir("/root/d", user="root") is True
    assert box.files.get_info("/root/d", user="root").owner == "root"
    box.files.write("/root/d/f", "x", user="root", metadata={"k": "v"})
    assert box.files.get_info("/root/d/f", user="root").metadata == {"k": "v"}
    moved = box.files.rename("/root/d/f", "/root/d/g", user="root")
    assert moved.path == "/root/d/g"
    assert box.files.exists("/root/d/g", user="root")
    box.files.remove("/root/d", user="root")
    assert not box.files.exists("/root/d", user="root")
    # A directory root makes outside its home is root's too.
    box.files.make_dir("/tmp/root-made", user="root")
    assert box.files.get_info("/tmp/root-made").owner == "root"


def test_watching_roots_home_as_root(box: Sandbox) -> None:
    box.files.make_dir("/root/w", user="root")
    box.commands.run("chmod 700 /root/w", user="root")
    handle = box.files.watch_dir("/root/w", user="root", recursive=True)
    try:
        box.files.make_dir("/root/w/sub", user="root")
        box.files.write("/root/w/sub/new.txt", "hi", user="root")
        seen: list[str] = []

        def has_new_file() -> bool:
            seen.extend(event.name for event in handle.get_new_events())
            return "sub/new.txt" in seen

        _wait_for(has_new_file)
    finally:
        handle.stop()
    with pytest.raises(SandboxException):
        box.files.watch_dir("/root/w")  # the user may not watch root's directory


def test_root_through_the_async_sdk(sdk_env: None) -> None:
    async def scenario() -> None:
        box = await AsyncSandbox.create(timeout=120)
        try:
            done = await box.commands.run("id -u; pwd", user="root")
            assert done.stdout.split() == ["0", "/root"]
            await box.files.write("/root/async.txt", "async root", user="root")
            assert await box.files.read("/root/async.txt", user="root") == "async root"
            info = await box.files.get_info("/root/async.txt", user="root")
            assert info.owner == "root"
            names = [entry.name for entry in await box.files.list("/root", user="root")]
            assert "async.txt" in names
            await box.commands.run("chmod 600 /root/async.txt", user="root")
            with pytest.raises(SandboxException):
                await box.files.read("/root/async.txt")
            rel = await box.files.write("rel-async.txt", "r", user="root")
            assert rel.path == "/root/rel-async.txt"

            events: list[str] = []
            handle = await box.files.watch_dir(
                "/root", lambda event: events.append(event.name), user="root"
            )
            try:
                await box.files.write("/root/watched.txt", "w", user="root")
                deadline = time.monotonic() + 10
                while "watched.txt" not in events:
                    assert time.monotonic() < deadline, events
                    await asyncio.sleep(0.05)
            finally:
                await handle.stop()  # type: ignore[no-untyped-call]  # the SDK's, untyped
        finally:
            await box.kill()

    asyncio.run(scenario())
