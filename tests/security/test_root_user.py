"""`user="root"` (the SDK's commands and files as box root) must not undo issue 9's
protections: a command started as root holds only sudo's capabilities, so it can neither
ptrace the agent nor read its memory, environment or channel, also right after the agent
has acted as root for files (each switch of its file ids resets its dumpable flag, which
it clears again); and acting as root never leaks into the user's next request."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from e2b import Sandbox, SandboxException

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="box root needs full isolation, which needs root"
)

AGENT_PROBE = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
found = {"uid": os.getuid(), "CapEff": ""}
for line in open("/proc/self/status"):
    if line.startswith("CapEff:"):
        found["CapEff"] = line.split()[1]
def attempt(name, action):
    try:
        action()
        found[name] = "allowed"
    except OSError as refused:
        found[name] = errno.errorcode.get(refused.errno, str(refused.errno))
def ptrace(request):
    def run():
        if libc.ptrace(request, 1, None, None) != 0:
            raise OSError(ctypes.get_errno(), "ptrace")
        libc.ptrace(17, 1, None, None)  # PTRACE_DETACH, had it worked
    return run
attempt("ptrace attach pid 1", ptrace(16))  # PTRACE_ATTACH
attempt("ptrace seize pid 1", ptrace(0x4206))  # PTRACE_SEIZE
attempt("read /proc/1/mem", lambda: open("/proc/1/mem", "rb").read(1))
attempt("read /proc/1/environ", lambda: open("/proc/1/environ", "rb").read(1))
attempt("open /proc/1/fd/1", lambda: open("/proc/1/fd/1", "wb").write(b"{}\n"))
class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
def vm_read():
    buffer = ctypes.create_string_buffer(8)
    local, remote = IoVec(ctypes.addressof(buffer), 8), IoVec(0x400000, 8)
    if libc.syscall(310, 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) < 0:
        number = ctypes.get_errno()
        if number != errno.EFAULT:  # EFAULT: let in, at an address not mapped
            raise OSError(number, "process_vm_readv")
attempt("process_vm_readv pid 1", vm_read)
print(json.dumps(found))
"""
CAP_SYS_PTRACE = 19


@pytest.fixture
def box(sdk_env: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=120)
    yield sandbox
    sandbox.kill()


def _probe_as_root(box: Sandbox) -> dict[str, object]:
    box.files.write("/tmp/probe.py", AGENT_PROBE)
    found: dict[str, object] = json.loads(
        box.commands.run("python3 /tmp/probe.py", user="root", timeout=60).stdout
    )
    return found


def test_a_root_command_cannot_reach_the_agent(box: Sandbox) -> None:
    found = _probe_as_root(box)

    assert found.pop("uid") == 0  # the probe really ran as box root
    assert not int(str(found.pop("CapEff")), 16) >> CAP_SYS_PTRACE & 1
    assert {name: got for name, got in found.items() if got == "allowed"} == {}
    assert box.commands.run("echo alive").stdout == "alive\n"  # the agent lives on


def test_the_agent_stays_out_of_reach_after_acting_as_root_for_files(box: Sandbox) -> None:
    # Each of these switches the agent's file ids to box root and back.
    box.files.write("/root/one", "1", user="root")
    box.files.list("/root", user="root")
    handle = box.files.watch_dir("/root", user="root")
    box.files.write("/root/two", "2", user="root")  # an event, looked at as root
    handle.stop()

    found = _probe_as_root(box)

    found.pop("uid"), found.pop("CapEff")
    assert {name: got for name, got in found.items() if got == "allowed"} == {}


def test_acting_as_root_never_leaks_into_the_users_requests(box: Sandbox) -> None:
    box.commands.run("mkdir -m 700 /root/private && echo s > /root/private/s", user="root")
    # Interleave root and user requests: each user request must still be refused.
    for _ in range(3):
        assert box.files.read("/root/private/s", user="root") == "s\n"
        with pytest.raises(SandboxException):
            box.files.read("/root/private/s")
        box.files.list("/root/private", user="root")
        with pytest.raises(SandboxException):
            box.files.write("/root/private/from-user", "x")
        with pytest.raises(SandboxException):
            box.files.make_dir("/root/private/dir-from-user")
        with pytest.raises(SandboxException):
            box.files.remove("/root/private/s")
    assert box.commands.run("id -u").stdout.strip() == "1000"
    listing = box.commands.run("ls /root/private", user="root").stdout.split()
    assert listing == ["s"]
