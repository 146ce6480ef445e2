"""Full isolation (root): what a box can see and do. Skipped without root, cgroups or bwrap."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxd.isolation.base import AGENT_PATH_INSIDE
from tests.sandboxd.isolation.helpers import Launch, Loop, ask, spec


@pytest.fixture
def planted_key(data_dir: Path) -> Iterator[Path]:
    """A secret in the data dir and one in the host's /tmp: neither may show in a box."""
    key = data_dir / "api-key.secret"
    key.write_text("sk-planted\n")
    host_tmp_key = Path(f"/tmp/sandboxd-planted-{os.getpid()}.key")
    host_tmp_key.write_text("sk-planted\n")
    yield key
    host_tmp_key.unlink(missing_ok=True)


def test_only_usr_etc_var_and_the_box_own_dirs_are_visible(
    launch_full: Launch, loop: Loop, planted_key: Path, data_dir: Path
) -> None:
    box = launch_full()

    root = set(loop.run(ask(box, "import os; result = os.listdir('/')")))
    assert root <= {
        "usr",
        "etc",
        "var",  # the box's own: a skeleton for apt and dpkg (rootfs.py), not the host's
        "bin",
        "lib",
        "lib64",
        "sbin",
        "proc",
        "dev",
        "home",
        "tmp",
        "opt",
        "root",  # box root's own home, on the box's disk (not the host's /root)
    }
    probes = [
        "/work",
        "/sys",
        "/var/lib/apt/lists/lock",
        "/var/log/dpkg.log",
        str(data_dir),
        str(planted_key),
    ]
    code = f"import os; result = [p for p in {probes!r} if os.path.exists(p)]"
    assert loop.run(ask(box, code)) == []
    var = set(loop.run(ask(box, "import os; result = os.listdir('/var')")))
    assert var <= {"lib", "cache", "log", "tmp"}
    assert loop.run(ask(box, "import os; result = os.listdir('/tmp')")) == []
    assert loop.run(ask(box, "import os; result = os.listdir('/home')")) == ["user"]


def test_planted_key_is_not_anywhere_in_the_box(
    launch_full: Launch, loop: Loop, planted_key: Path
) -> None:
    box = launch_full()
    code = (
        "import os\nresult = []\n"
        "for top in ('/home', '/tmp', '/opt', '/dev', '/etc', '/var'):\n"
        "    for d, _, files in os.walk(top):\n"
        "        result += [f for f in files if 'planted' in f or f.endswith('.secret')]"
    )
    assert loop.run(ask(box, code)) == []


def test_agent_script_is_visible_read_only(launch_full: Launch, loop: Loop) -> None:
    box = launch_full()

    assert loop.run(ask(box, f"result = open({AGENT_PATH_INSIDE!r}).read()")) == "print('agent')\n"
    code = f"""
try:
    open({AGENT_PATH_INSIDE!r}, 'a').write('x')
    result = ['written']
except OSError as exc:
    result = [exc.errno]
mounts = [line.split() for line in open('/proc/self/mountinfo')]
result += [m[5] for m in mounts if m[4] == {AGENT_PATH_INSIDE!r}]
"""
    write_errno, mount_options = loop.run(ask(box, code))
    assert write_errno in (13, 30)  # EACCES (root's file) or EROFS
    assert "ro" in mount_options.split(",")


def test_runs_as_uid_1000_in_its_home_with_the_requested_env(
    launch_full: Launch, loop: Loop
) -> None:
    box = launch_full(spec(env_vars={"FOO": "bar"}, hostname="sbx-test"))
    code = (
        "import os, socket; result = [os.getuid(), os.getgid(), os.getcwd(), "
        "os.environ.get('FOO'), os.environ['HOME'], socket.gethostname(), sorted(os.environ)]"
    )
    uid, gid, cwd, foo, home, hostname, env_names = loop.run(ask(box, code))

    assert (uid, gid, cwd, foo, home, hostname) == (
        1000,
        1000,
        "/home/user",
        "bar",
        "/home/user",
        "sbx-test",
    )
    assert set(env_names) == {"FOO", "HOME", "USER", "PATH", "LANG", "PWD"}  # PWD: bwrap's
    # On the host: the box's own ids, box root R and its user R + 1000 (never host root).
    assert os.stat(box.disk.home_dir).st_uid == box.host_uid + 1000


def test_host_loopback_server_is_unreachable(launch_full: Launch, loop: Loop) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the timeout: nobody came, as expected
            accepted.append(server.accept())

    box = launch_full()
    code = f"""
import socket
s = socket.socket(); s.settimeout(2)
try:
    s.connect(('127.0.0.1', {port})); result = 'connected'
except OSError as exc:
    result = type(exc).__name__
"""
    try:
        waiter = threading.Thread(target=accept)
        waiter.start()
        outcome = loop.run(ask(box, code))
        waiter.join(2)
        interfaces = loop.run(
            ask(box, "import socket; result = [n for _, n in socket.if_nameindex()]")
        )
    finally:
        server.close()

    assert outcome in ("ConnectionRefusedError", "OSError")
    assert accepted == []
    assert interfaces == ["lo"]


def test_host_processes_are_invisible_and_cannot_be_signalled(
    launch_full: Launch, loop: Loop
) -> None:
    box = launch_full()
    # A host process of the box user's host uid: signallable by uid, if it were visible.
    user_uid = box.host_uid + 1000
    as_box_uid = ["setpriv", f"--reuid={user_uid}", f"--regid={user_uid}"]
    same_uid = subprocess.Popen([*as_box_uid, "--clear-groups", "sleep", "30"])
    code = f"""
import os
pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]
outcomes = []
for pid in ({os.getpid()}, {same_uid.pid}):
    try:
        os.kill(pid, 15); outcomes.append('delivered')
    except OSError as exc:
        outcomes.append(type(exc).__name__)
result = [pids, outcomes]
"""
    try:
        pids, outcomes = loop.run(ask(box, code))
        sleeper_alive = same_uid.poll() is None
    finally:
        same_uid.kill()
        same_uid.wait()

    assert max(pids) < 10  # only the box's own: bwrap's init and the probe
    assert outcomes == ["ProcessLookupError", "ProcessLookupError"]
    assert sleeper_alive


def test_no_capabilities_and_mount_unshare_are_refused(launch_full: Launch, loop: Loop) -> None:
    box = launch_full()
    caps = loop.run(
        ask(box, "result = [l for l in open('/proc/self/status') if l.startswith('Cap')]")
    )
    code = """
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(ret):
    return ctypes.get_errno() if ret == -1 else 0
r = {}
os.makedirs('/tmp/m', exist_ok=True)
r['mount'] = errno_of(libc.mount(b'none', b'/tmp/m', b'tmpfs', 0, None))
r['unshare_user'] = errno_of(libc.unshare(0x10000000))
r['unshare_net'] = errno_of(libc.unshare(0x40000000))
r['clone_newuser'] = errno_of(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
r['clone3'] = errno_of(libc.syscall(435, 0, 0))
r['personality'] = errno_of(libc.personality(0x0040000))
def run(*argv):
    return subprocess.run(argv, capture_output=True).returncode
r['mount_cmd'] = run('mount', '-t', 'tmpfs', 'none', '/tmp/m')
r['unshare_cmd'] = run('unshare', '-U', 'true')
r['fork'] = subprocess.run(['true']).returncode
result = r
"""
    r = loop.run(ask(box, code))

    assert all(line.split()[1] == "0000000000000000" for line in caps), caps
    assert r["mount"] == r["unshare_user"] == r["unshare_net"] == r["clone_newuser"] == 1  # EPERM
    assert r["clone3"] == 38  # ENOSYS: glibc falls back to clone(2), whose flags are checked
    assert r["personality"] == 1
    assert r["mount_cmd"] != 0 and r["unshare_cmd"] != 0
    assert r["fork"] == 0  # ordinary process creation still works


def test_the_box_has_its_own_user_and_host_names(launch_full: Launch, loop: Loop) -> None:
    passwd = Path("/etc/passwd").read_text().splitlines()
    # The human ones: the distro's system accounts (ids below 1000) are the box's too.
    host_users = {fields[0] for fields in (line.split(":") for line in passwd)
                  if int(fields[2]) >= 1000 and fields[0] != "nobody"}  # fmt: skip
    box = launch_full(spec(hostname="sbx-names"))
    code = """
import pwd, socket, subprocess
whoami = subprocess.run(['whoami'], capture_output=True, text=True).stdout.strip()
users = [p.pw_name for p in pwd.getpwall()]
result = [whoami, users, socket.gethostbyname(socket.gethostname()), open('/etc/hostname').read()]
"""
    whoami, users, address, hostname_file = loop.run(ask(box, code))

    assert whoami == "user"
    assert not host_users & set(users)
    assert address == "127.0.1.1" and hostname_file == "sbx-names\n"
