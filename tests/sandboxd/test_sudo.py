"""sudo in a full-isolation box, through the official SDK (sync and async): the box's user
runs commands as box root (its own user namespace; host id R), as E2B's user does with
passwordless sudo."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest
from e2b import AsyncSandbox, CommandExitException, PtySize, Sandbox

from sandboxd.testing import RunningSandboxd

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="box root needs full isolation, which needs root"
)


@pytest.fixture
def box(sdk_env: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=120)
    yield sandbox
    sandbox.kill()


def test_sudo_runs_commands_as_box_root(box: Sandbox) -> None:
    assert box.commands.run("sudo id -u").stdout.strip() == "0"
    assert box.commands.run("sudo whoami").stdout.strip() == "root"
    assert box.commands.run("sudo -u user id -u").stdout.strip() == "1000"
    assert box.commands.run("sudo -n -E -- id -un").stdout.strip() == "root"
    assert box.commands.run("id -u").stdout.strip() == "1000"  # without sudo: the user


def test_commands_hold_no_capability_and_box_root_holds_only_its_few(box: Sandbox) -> None:
    def sets(command: str) -> dict[str, str]:
        lines = box.commands.run(command).stdout.splitlines()
        return dict(line.split(":\t") for line in lines)

    names = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    assert sets("grep ^Cap /proc/self/status") == dict.fromkeys(names, "0000000000000000")
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT
    # AUDIT_WRITE SETFCAP: bits 0 1 3-8 10 18 29 31. No SYS_ADMIN (21), SYS_PTRACE (19),
    # NET_ADMIN (12), NET_RAW (13), MKNOD (27), SYS_MODULE (16), SYS_RESOURCE (24).
    root_sets = sets("sudo grep ^Cap /proc/self/status")
    assert root_sets == dict.fromkeys(names, "00000000a00405fb")
    groups = box.commands.run("grep -E '^(Uid|Gid|Groups)' /proc/self/status").stdout
    assert groups.split() == ["Uid:", *["1000"] * 4, "Gid:", *["1000"] * 4, "Groups:", "1000"]


def test_sudo_passes_stdin_stdout_stderr_and_the_exit_code(box: Sandbox) -> None:
    done = box.commands.run("echo fed-in | sudo sh -c 'cat; echo to-err >&2'")
    assert (done.stdout, done.stderr) == ("fed-in\n", "to-err\n")
    with pytest.raises(CommandExitException) as failed:
        box.commands.run("sudo sh -c 'exit 7'")
    assert failed.value.exit_code == 7


def test_sudo_options_scripts_use(box: Sandbox) -> None:
    assert box.commands.run("sudo -i pwd").stdout.strip() == "/root"
    assert box.commands.run("sudo -v && sudo -k && echo fine").stdout.strip() == "fine"
    assert box.commands.run("sudo GREETING=hi sh -c 'echo $GREETING'").stdout.strip() == "hi"
    env = box.commands.run("MINE=kept sudo -E sh -c 'echo $MINE $USER'").stdout.strip()
    assert env == "kept root"
    with pytest.raises(CommandExitException) as failed:
        box.commands.run("sudo --no-such-option true")
    assert "usage: sudo" in failed.value.stderr


def test_a_file_made_by_sudo_is_box_roots_and_host_id_r(
    box: Sandbox, sandboxd: RunningSandboxd
) -> None:
    box.commands.run("sudo touch /root/x")
    listing = box.commands.run("sudo stat -c '%u %g' /root/x").stdout.split()
    assert listing == ["0", "0"]
    with pytest.raises(CommandExitException):
        box.commands.run("cat /root/x")  # the user may not look into root's home
    host_files = [
        path
        for path in _mounts_under("/run/sandboxd")
        if os.path.exists(os.path.join(path, "root", "x"))
    ]
    assert len(host_files) == 1
    host_x = os.stat(os.path.join(host_files[0], "root", "x"))
    home = os.stat(os.path.join(host_files[0], "home"))
    assert host_x.st_uid >= 200_000 and host_x.st_uid == host_x.st_gid  # R, never host root
    assert home.st_uid == host_x.st_uid + 1000  # the box's user is R + 1000


def test_sudo_in_the_background_and_in_a_pty(box: Sandbox) -> None:
    handle = box.commands.run("sudo sh -c 'sleep 0.2; id -u'", background=True)
    assert handle.wait().stdout.strip() == "0"
    seen = bytearray()
    pty = box.pty.create(size=PtySize(rows=24, cols=80), timeout=30)
    box.pty.send_stdin(pty.pid, b"sudo id -un; sudo tty; exit\n")
    pty.wait(on_pty=seen.extend)
    assert b"root" in bytes(seen)
    assert b"/dev/pts/" in bytes(seen)  # the root command got the terminal as its stdin


def test_ctrl_c_in_a_terminal_reaches_the_root_command(box: Sandbox) -> None:
    seen = bytearray()
    pty = box.pty.create(size=PtySize(rows=24, cols=80), timeout=60)
    box.pty.send_stdin(pty.pid, b"sudo sleep 300; echo after=$?; exit\n")
    # The root command itself (not sudo's own command line) runs: the relay is in place.
    _wait_for(lambda: "sleep 300" in box.commands.run("ps -eo args").stdout.splitlines())
    box.pty.send_stdin(pty.pid, b"\x03")  # the terminal's SIGINT goes to sudo, which relays it
    pty.wait(on_pty=seen.extend)
    assert b"after=130" in bytes(seen)  # 128 + SIGINT, as sudo reports it
    assert "sleep 300" not in box.commands.run("ps -eo args").stdout


def test_sudo_through_the_async_sdk(sdk_env: None) -> None:
    async def run() -> tuple[str, int]:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            whoami = await sandbox.commands.run("sudo whoami")
            handle = await sandbox.commands.run("sudo sh -c 'exit 3'", background=True)
            try:
                await handle.wait()
            except CommandExitException as failed:
                return whoami.stdout.strip(), failed.exit_code
            return whoami.stdout.strip(), 0
        finally:
            await sandbox.kill()

    assert asyncio.run(run()) == ("root", 3)


def test_a_killed_sudo_ends_its_command(box: Sandbox) -> None:
    handle = box.commands.run("sudo sleep 300", background=True)
    _wait_for(lambda: "sleep 300" in box.commands.run("ps -eo args").stdout)
    handle.kill()
    _wait_for(lambda: "sleep 300" not in box.commands.run("ps -eo args").stdout)


def _mounts_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [point for point in points if point.startswith(prefix + "/")]


def _wait_for(check: object, timeout_s: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
