"""Box root (sudo) must not undo issue 9's protections: from root in a real full box, the
agent (pid 1, undumpable, box root's own uid) stays out of reach, the kernel and the network
rules stay closed, and another box and the host stay out of reach. Each probe prints what it
got; the test checks every attempt was refused."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox

from sandboxd.testing import running_sandboxd

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="box root needs full isolation, which needs root"
)

AGENT_PROBE = r"""
import ctypes, errno, json, os, signal
libc = ctypes.CDLL(None, use_errno=True)
found = {"uid": os.getuid()}
def attempt(name, action):
    try:
        action()
        found[name] = "allowed"
    except OSError as refused:
        found[name] = errno.errorcode.get(refused.errno, str(refused.errno))
attempt("read /proc/1/mem", lambda: open("/proc/1/mem", "rb").read(1))
attempt("read /proc/1/environ", lambda: open("/proc/1/environ", "rb").read(1))
attempt("open /proc/1/fd/1", lambda: open("/proc/1/fd/1", "wb").write(b"{}\n"))
attempt("open /proc/1/fd/0", lambda: open("/proc/1/fd/0", "rb").close())
def ptrace():
    if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, 1, None, None)  # PTRACE_DETACH, had it worked
attempt("ptrace pid 1", ptrace)
for number in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM):
    os.kill(1, number)  # "succeeds": the kernel drops it, as init handles none of them
state = open("/proc/1/stat").read().rsplit(")", 1)[1].split()[0]
found["pid 1 after SIGKILL, SIGSTOP, SIGTERM"] = "allowed" if state in "TtZX" else "alive"
def call(name, number, *args):
    def run():
        if libc.syscall(number, *args) < 0:
            raise OSError(ctypes.get_errno(), name)
    attempt(name, run)
call("mount", 165, b"none", b"/tmp", b"tmpfs", 0, None)
call("umount2 /usr", 166, b"/usr", 2)
call("unshare(CLONE_NEWUSER)", 272, 0x10000000)
call("unshare(CLONE_NEWNS)", 272, 0x00020000)
call("setns", 308, 0, 0)
call("bpf", 321, 0, None, 0)
print(json.dumps(found))
"""

NETWORK_PROBE = r"""
import json, subprocess
found = {}
for name, argv in {
    "ip route add": ["ip", "route", "add", "192.0.2.0/24", "dev", "lo"],
    "ip rule add": ["ip", "rule", "add", "from", "all", "lookup", "100"],
    "ip link set lo down": ["ip", "link", "set", "lo", "down"],
    "iptables -F": ["iptables", "-F"],
    "nft flush ruleset": ["nft", "flush", "ruleset"],
}.items():
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10)
        found[name] = "allowed" if done.returncode == 0 else "refused"
    except FileNotFoundError:
        found[name] = "missing"
print(json.dumps(found))
"""

HOST_WRITE_PROBE = r"""
import errno, json, os
found = {}
for path in ("/usr/bin/sandboxd-probe", "/etc/sandboxd-probe", "/usr/lib/os-release"):
    try:
        with open(path, "a") as file:
            file.write("x")
        found[path] = "allowed"
    except OSError as refused:
        found[path] = errno.errorcode.get(refused.errno, str(refused.errno))
print(json.dumps(found))
"""


@pytest.fixture
def two_boxes(sdk_env: None) -> Iterator[tuple[Sandbox, Sandbox]]:
    first = Sandbox.create(timeout=120)
    second = Sandbox.create(timeout=120)
    yield first, second
    first.kill()
    second.kill()


def _as_root(box: Sandbox, probe: str) -> dict[str, object]:
    box.files.write("/tmp/probe.py", probe)
    done = box.commands.run("sudo python3 /tmp/probe.py", timeout=60)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_box_root_cannot_reach_the_agent_or_the_kernel(
    two_boxes: tuple[Sandbox, Sandbox],
) -> None:
    box, _ = two_boxes
    found = _as_root(box, AGENT_PROBE)

    assert found.pop("uid") == 0  # the probe really ran as box root
    assert {name: got for name, got in found.items() if got == "allowed"} == {}
    assert box.commands.run("echo alive").stdout == "alive\n"  # the agent lives on


def test_box_root_cannot_change_the_box_network(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    box, _ = two_boxes
    found = _as_root(box, NETWORK_PROBE)

    assert "allowed" not in found.values(), found
    assert box.commands.run("ip -o link show lo").stdout.count("UP") >= 1


def test_box_root_writes_land_in_the_boxs_overlay_never_on_the_host(
    two_boxes: tuple[Sandbox, Sandbox],
) -> None:
    box, other = two_boxes
    os_release = Path("/usr/lib/os-release").read_bytes()
    found = _as_root(box, HOST_WRITE_PROBE)

    # The box's /usr and /etc are its own (overlays on its disk): box root may write them...
    assert set(found.values()) == {"allowed"}, found
    assert box.commands.run("cat /usr/bin/sandboxd-probe").stdout == "x"
    # ...and the host's files, and the other box's, stay as they were.
    assert not os.path.exists("/usr/bin/sandboxd-probe")
    assert not os.path.exists("/etc/sandboxd-probe")
    assert Path("/usr/lib/os-release").read_bytes() == os_release
    assert other.commands.run("test -e /etc/sandboxd-probe || echo absent").stdout == "absent\n"


def test_box_root_cannot_see_or_open_another_box(two_boxes: tuple[Sandbox, Sandbox]) -> None:
    first, second = two_boxes
    second.commands.run("sleep 300 & echo $! > /tmp/sleeper; echo secret > /home/user/s.txt")
    second.commands.run("chmod 600 /home/user/s.txt")
    root_of_first = first.commands.run("sudo ps -eo args").stdout
    assert "sleep 300" not in root_of_first

    host_second_home = _home_holding("s.txt")
    host_uid = os.stat(host_second_home).st_uid
    first_r = int(first.commands.run("sudo cat /proc/self/uid_map").stdout.split()[1])
    assert not first_r <= host_uid < first_r + 65536  # the other box's ids are not ours
    # Even by number, the other box's user is not a uid box root can become.
    probe = (
        f"import os\ntry:\n    os.setuid({host_uid})\n    print('allowed')\n"
        "except OSError:\n    print('refused')\n"
    )
    first.files.write("/tmp/setuid.py", probe)
    assert first.commands.run("sudo python3 /tmp/setuid.py").stdout.strip() == "refused"


READ_PROBE = r"""
import errno, json, os, sys
found = {}
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        found[path] = "allowed"
    except OSError as refused:
        found[path] = errno.errorcode[refused.errno]
print(json.dumps(found))
"""


def _read_as_root(box: Sandbox, paths: list[str]) -> dict[str, object]:
    box.files.write("/tmp/read.py", READ_PROBE)
    done = box.commands.run(f"sudo python3 /tmp/read.py {' '.join(paths)}", timeout=60)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_box_root_cannot_read_the_hosts_root_only_files(
    two_boxes: tuple[Sandbox, Sandbox],
) -> None:
    box, _ = two_boxes
    secrets = ["/etc/shadow", "/etc/gshadow", "/etc/ssl/private", "/etc/ssh/ssh_host_rsa_key"]
    secrets = [path for path in secrets if os.path.exists(path)]
    if not secrets:
        pytest.skip("this host has none of /etc/shadow, gshadow, ssl/private, ssh host keys")
    found = _read_as_root(box, secrets)

    # The box's /etc is a copy of what every host user may read: these are not in it.
    assert found == {path: "ENOENT" for path in secrets}


def test_box_root_cannot_read_a_host_secret_through_etc(tmp_path: Path) -> None:
    """A host file only root may read (and a root-only dir's world-readable file) is not
    in the box at all; with an idmapped host /etc, box root would read both."""
    token = uuid.uuid4().hex
    canary = Path(f"/etc/sandboxd-test-canary-{token[:12]}")
    hidden_dir = Path(f"/etc/sandboxd-test-canary-dir-{token[:12]}")
    fd = os.open(canary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, token.encode())
        os.close(fd)
        hidden_dir.mkdir(mode=0o700)
        (hidden_dir / "inside").write_text(token)
        os.chmod(hidden_dir / "inside", 0o644)
        # A sandboxd of its own: it copies /etc's world-readable part at its first create.
        with running_sandboxd(tmp_path) as server:
            for name, value in server.sdk_env().items():
                os.environ[name] = value
            try:
                box = Sandbox.create(timeout=120)
                try:
                    paths = [str(canary), str(hidden_dir), f"{hidden_dir}/inside"]
                    found = _read_as_root(box, paths)
                    grep = box.commands.run(f"sudo grep -rl {token} /etc /var || true")
                finally:
                    box.kill()
            finally:
                for name in server.sdk_env():
                    os.environ.pop(name, None)
        assert found == dict.fromkeys(paths, "ENOENT")
        assert grep.stdout == ""
        base_tree = tmp_path / "rootfs" / "tree"
        assert not (base_tree / canary.relative_to("/")).exists()
        assert not (base_tree / hidden_dir.relative_to("/")).exists()
    finally:
        canary.unlink(missing_ok=True)
        shutil.rmtree(hidden_dir, ignore_errors=True)


def _home_holding(name: str) -> str:
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in points:
        if point.startswith("/run/sandboxd/") and os.path.exists(f"{point}/home/{name}"):
            return f"{point}/home"
    raise AssertionError(f"no box home holds {name}")


SOCKET_FLOOD_PROBE = r"""
import json, os, socket
found = {}
def connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(b"\0sandboxd-sudo")
    return sock
# One message past the agent's bound (128 KiB; the socket itself takes ~200 KiB), with
# its three fds: refused, never run.
env = {f"X{i}": "y" * (50 << 10) for i in range(3)}  # each under exec's 128 KiB per string
big = json.dumps({"argv": ["true"], "env": env, "cwd": "/", "uid": 0})
sock = connect()
try:
    socket.send_fds(sock, [big.encode()], [0, 1, 2])
    found["oversized"] = sock.recv(4096).decode()
except OSError as refused:
    found["oversized"] = f"send refused: {refused.strerror}"
# Not JSON, and a JSON request without fds.
for name, data, fds in (("garbage", b"\xff" * 100, [0, 1, 2]), ("no fds", b"{}", [])):
    sock = connect()
    socket.send_fds(sock, [data], fds) if fds else sock.send(data)
    found[name] = sock.recv(4096).decode()
# More connections at once than the agent serves: the ones past its cap read EOF.
import select, time
held = [connect() for _ in range(40)]
open_socks, closed, deadline = list(held), 0, time.monotonic() + 10
while closed < 40 - 32 and time.monotonic() < deadline:  # until the cap shows, bounded
    readable, _, _ = select.select(open_socks, [], [], 0.1)
    for sock in readable:
        open_socks.remove(sock)
        closed += sock.recv(16) == b""
found["closed_of_40"] = closed
for sock in held:
    sock.close()
print(json.dumps(found))
"""


def test_what_the_agent_reads_from_sudo_clients_is_bounded(
    two_boxes: tuple[Sandbox, Sandbox],
) -> None:
    box, _ = two_boxes
    box.files.write("/tmp/flood.py", SOCKET_FLOOD_PROBE)
    found = json.loads(box.commands.run("python3 /tmp/flood.py", timeout=60).stdout)

    assert "error" in found["oversized"]  # 150 KiB: the socket takes it, the agent does not
    assert "error" in found["garbage"] and "error" in found["no fds"]
    assert found["closed_of_40"] >= 40 - 32  # SUDO_MAX_CONNECTIONS served, the rest closed
    assert box.commands.run("sudo id -u").stdout.strip() == "0"  # and sudo still works
