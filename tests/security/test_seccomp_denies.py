"""Finding 9, seccomp: io_uring (a second syscall interface the filter cannot see into, and
a long run of kernel exploits) and AF_VSOCK sockets (host-guest channels, a recent root
exploit) were allowed in a box. Tried from code in a real box through the SDK."""

from __future__ import annotations

import json

import pytest
from e2b import Sandbox

from sandboxd.isolation.seccomp import seccomp_available

# x86-64 numbers; the test skips elsewhere.
PROBE = """
import ctypes, errno, json, os, platform, socket
assert platform.machine() == "x86_64", platform.machine()
libc = ctypes.CDLL(None, use_errno=True)
found = {}
params = ctypes.create_string_buffer(120)  # struct io_uring_params
for name, number, args in [
    ("io_uring_setup", 425, (1, params)),
    ("io_uring_enter", 426, (0, 0, 0, 0, None, 0)),
    ("io_uring_register", 427, (0, 0, None, 0)),
]:
    result = libc.syscall(number, *args)
    found[name] = "allowed" if result >= 0 else errno.errorcode[ctypes.get_errno()]
    if result >= 0:
        os.close(result)
try:
    socket.socket(40, socket.SOCK_STREAM).close()  # AF_VSOCK
    found["socket(AF_VSOCK)"] = "allowed"
except OSError as refused:
    found["socket(AF_VSOCK)"] = errno.errorcode[refused.errno]
socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()  # ordinary sockets still work
socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
print(json.dumps(found))
"""
DENIED = {"EPERM", "ENOSYS"}


@pytest.mark.usefixtures("sdk_env")
def test_io_uring_and_vsock_are_denied_in_a_box(small_sandbox: Sandbox) -> None:
    ok, why = seccomp_available()
    if not ok:
        pytest.skip(why)
    small_sandbox.files.write("/tmp/probe.py", PROBE)

    done = small_sandbox.commands.run("python3 /tmp/probe.py", timeout=30)
    found = json.loads(done.stdout)

    assert set(found) == {
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "socket(AF_VSOCK)",
    }
    assert {name: code for name, code in found.items() if code not in DENIED} == {}
