"""The official `e2b` SDK, unmodified, against a real sandboxd: it cannot tell the difference."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from e2b import CommandExitException, Sandbox


@pytest.fixture
def sandbox(sdk_env: None) -> Iterator[Sandbox]:
    created = Sandbox.create(timeout=120, metadata={"suite": "sdk"})
    yield created
    with contextlib.suppress(Exception):  # already killed by the test
        created.kill()


def test_commands_run_with_output_and_exit_code(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo hello; echo oops >&2; whoami; pwd")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["hello", "user", "/home/user"]
    assert result.stderr.strip() == "oops"


def test_a_failing_command_raises_with_its_exit_code(sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitException) as failed:
        sandbox.commands.run("echo about to fail; exit 3")
    assert failed.value.exit_code == 3
    assert "about to fail" in failed.value.stdout


def test_python_runs_inside(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("python3 -c 'import sys; print(sys.version_info[0])'")
    assert result.stdout.strip() == "3"


def test_files_write_then_read(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/notes/hello.txt", "hi from the host\n")
    assert sandbox.files.read("/home/user/notes/hello.txt") == "hi from the host\n"
    names = [entry.name for entry in sandbox.files.list("/home/user/notes")]
    assert names == ["hello.txt"]
    result = sandbox.commands.run("cat /home/user/notes/hello.txt")
    assert result.stdout == "hi from the host\n"


def test_info_list_timeout_and_metrics(sandbox: Sandbox) -> None:
    info = sandbox.get_info()
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.metadata == {"suite": "sdk"}
    listed = Sandbox.list().next_items()
    assert sandbox.sandbox_id in [item.sandbox_id for item in listed]
    sandbox.set_timeout(300)
    assert sandbox.get_info().end_at > info.end_at
    metrics = sandbox.get_metrics()
    assert isinstance(metrics, list)


def test_pause_connect_and_kill(sandbox: Sandbox) -> None:
    sandbox.files.write("/home/user/kept.txt", "still here")
    assert sandbox.pause() is True
    assert sandbox.get_info().state.value == "paused"
    resumed = Sandbox.connect(sandbox.sandbox_id)
    assert resumed.files.read("/home/user/kept.txt") == "still here"
    assert resumed.commands.run("echo back").stdout.strip() == "back"
    resumed.kill()
    assert sandbox.sandbox_id not in [item.sandbox_id for item in Sandbox.list().next_items()]
