"""What code inside a sandbox can reach, tried through the official SDK like a user would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from e2b import CommandExitException, Sandbox

from sandboxd.testing import RunningSandboxd

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="full isolation (namespaces as an unprivileged uid) needs root"
)


@pytest.fixture(scope="module")
def sandbox(sandboxd: RunningSandboxd) -> Iterator[Sandbox]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in sandboxd.sdk_env().items():
            env.setenv(name, value)
        created = Sandbox.create(timeout=120)
        yield created
        created.kill()


def fails(sandbox: Sandbox, command: str) -> str:
    """Run `command`, which must fail; return what it printed."""
    with pytest.raises(CommandExitException) as failed:
        sandbox.commands.run(command)
    return str(failed.value.stdout + failed.value.stderr)


def test_host_files_and_sandboxd_key_are_out_of_reach(
    sandbox: Sandbox, sandboxd: RunningSandboxd
) -> None:
    fails(sandbox, f"cat {sandboxd.data_dir / 'api_key'}")
    fails(sandbox, "ls /root")
    fails(sandbox, f"ls {os.getcwd()}")  # the project
    assert sandbox.commands.run("ls -A /tmp").stdout == ""  # its own /tmp, not the host's


def test_sandboxd_own_api_is_unreachable(sandbox: Sandbox, sandboxd: RunningSandboxd) -> None:
    port = urlsplit(sandboxd.api_url).port
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
    out = fails(sandbox, f'python3 -c "{probe}"')
    assert "refused" in out or "unreachable" in out


def test_proc_shows_only_the_sandbox(sandbox: Sandbox) -> None:
    pids = sandbox.commands.run("ls /proc | grep -E '^[0-9]+$' | wc -l").stdout
    assert int(pids) < 10  # bwrap's init, the agent, this shell and its children
    fails(sandbox, "ls /proc/1/root/root")
    fails(sandbox, "echo 3 > /proc/sys/vm/drop_caches")
    # The sandbox's init (PID 1, the agent, box root) ignores a SIGKILL sent from inside its
    # namespace, even by box root; the user may not signal it at all.
    fails(sandbox, "kill -0 1")
    sandbox.commands.run("sudo kill -9 1; sleep 0.5; sudo kill -0 1")
    assert sandbox.commands.run("echo still here").stdout.strip() == "still here"
