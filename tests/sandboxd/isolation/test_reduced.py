"""REDUCED isolation, forced (as root here): bwrap with a user namespace, as a host uid of
the box's own, rlimits through prlimit, tmpfs disk, SIGSTOP pause, psutil usage. What it
cannot do is in `limitations` and asserted as such below (OOM seen only as MemoryError)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandboxd.isolation.base import AGENT_PATH_INSIDE, OomKill
from sandboxd.isolation.bwrap import bwrap_works, setpriv_argv
from sandboxd.isolation.paths import RUNTIME_ROOT
from sandboxd.isolation.reduced import ReducedIsolation
from sandboxd.isolation.reduced_box import ReducedBox
from sandboxd.isolation.uids import HostUidPool
from tests.sandboxd.isolation.helpers import (
    PROBE,
    TEST_UID_BASE,
    Launch,
    Loop,
    ask,
    read_line,
    running,
    spec,
)

SPIN = ["/usr/bin/python3", "-c", "print('ready', flush=True)\nwhile True: pass"]
# Uids of the boxes of this module: the isolation tests' own range, past full's first uids.
UID_BASE = TEST_UID_BASE + 50
UID_COUNT = 50


def own_uids() -> HostUidPool | None:
    """A uid pool as sandboxd gives reduced isolation as root (None: not root)."""
    return HostUidPool(UID_BASE, UID_COUNT) if os.geteuid() == 0 else None


@pytest.fixture
def reduced_iso(loop: Loop, data_dir: Path, agent_file: Path) -> Iterator[ReducedIsolation]:
    """As the isolation conftest's, with a uid of its own per box (required as root)."""
    prefix = setpriv_argv(UID_BASE) if os.geteuid() == 0 else []
    ok, why = bwrap_works(prefix)
    if not ok:
        pytest.skip(why)
    iso = ReducedIsolation(
        data_dir, reasons=["forced by the test"], agent_script=agent_file, host_uids=own_uids()
    )
    yield iso
    for box in iso.live_boxes():
        loop.run(box.destroy())
    loop.run(iso.cleanup_leftovers())
    iso.close()


def test_root_without_uids_of_its_own_is_refused(data_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root needs uids of its own")
    with pytest.raises(ValueError, match="host uids"):
        ReducedIsolation(data_dir)


def test_limitations_say_why_and_what_is_missing(reduced_iso: ReducedIsolation) -> None:
    text = " ".join(reduced_iso.limitations)

    assert reduced_iso.level == "reduced"
    assert reduced_iso.limitations[0] == "Reduced isolation because: forced by the test"
    for missing in ("RLIMIT_DATA", "RLIMIT_NPROC", "SIGSTOP", "CPU is not limited"):
        assert missing in text


def test_reduced_box_sees_only_its_own_files(
    launch_reduced: Launch, loop: Loop, data_dir: Path
) -> None:
    key = data_dir / "api-key.secret"
    key.write_text("sk-planted\n")
    box = launch_reduced()
    probes = ["/root", "/work", "/sys", "/var", str(data_dir), str(key)]
    code = f"import os; result = [[p for p in {probes!r} if os.path.exists(p)], os.listdir('/tmp')]"

    assert loop.run(ask(box, code)) == [[], []]
    assert loop.run(ask(box, "import os; result = [os.getuid(), os.getcwd()]")) == [
        1000,
        "/home/user",
    ]


def test_reduced_box_cannot_reach_the_host_loopback_or_processes(
    launch_reduced: Launch, loop: Loop
) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    box = launch_reduced()
    code = f"""
import os, socket
s = socket.socket(); s.settimeout(2)
try:
    s.connect(('127.0.0.1', {port})); net = 'connected'
except OSError as exc:
    net = type(exc).__name__
try:
    os.kill({os.getpid()}, 0); sig = 'delivered'
except OSError as exc:
    sig = type(exc).__name__
result = [net, sig]
"""
    try:
        assert loop.run(ask(box, code)) == ["ConnectionRefusedError", "ProcessLookupError"]
    finally:
        server.close()


def test_reduced_box_has_no_capabilities_and_seccomp(launch_reduced: Launch, loop: Loop) -> None:
    box = launch_reduced()
    code = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]
r = libc.unshare(0x10000000)
result = [caps, ctypes.get_errno() if r == -1 else 0]
"""
    assert loop.run(ask(box, code)) == [["0000000000000000"], 1]


def test_memory_over_the_rlimit_is_a_memory_error(launch_reduced: Launch, loop: Loop) -> None:
    box = launch_reduced(spec(memory_mb=64))
    code = """
try:
    x = bytearray(256 << 20); result = 'allocated'
except MemoryError:
    result = 'MemoryError'
"""
    assert loop.run(ask(box, code)) == "MemoryError"
    assert box.oom_kill_count() == 0  # a limitation: not counted as an OOM kill


def test_disk_quota_is_enforced_by_the_tmpfs_size(launch_reduced: Launch, loop: Loop) -> None:
    box: ReducedBox = launch_reduced(spec(disk_size_mb=32))
    code = """
written = 0
try:
    with open('/home/user/fill', 'wb') as f:
        while written < 100 << 20:
            f.write(b'x' * (1 << 20)); f.flush(); written += 1 << 20
except OSError as exc:
    result = [written, exc.errno]
"""
    written, err = loop.run(ask(box, code))
    usage = box.usage()

    assert err == 28 and 20 << 20 <= written <= 24 << 20  # home gets 3/4 of the disk
    assert usage.disk_used_bytes >= 20 << 20 and usage.disk_total_bytes == 32 << 20


BOMB = """
import os, signal
pids, refused = [], None
for _ in range(120):
    try:
        pids.append(os.posix_spawn('/bin/sleep', ['sleep', '30'], {}))
    except OSError as exc:
        refused = exc.errno
        break
for pid in pids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
result = [len(pids), refused]
"""


def test_the_process_limit_holds_per_box(launch_reduced: Launch, loop: Loop) -> None:
    box: ReducedBox = launch_reduced(spec(max_processes=40))
    soft = loop.run(
        ask(box, "import resource; result = resource.getrlimit(resource.RLIMIT_NPROC)[0]")
    )
    held, refused = loop.run(ask(box, BOMB))

    if os.geteuid() == 0:  # a uid of its own: nothing else counts
        assert soft == 40 and box.host_uid is not None
        assert {p.uids().real for p in psutil.Process(box.process.pid).children()} == {box.host_uid}
    else:  # as the user: their count + 40
        assert soft >= 40
    assert held < 40 and refused == 11  # EAGAIN


def tree_cpu_s(box: ReducedBox) -> float:
    """CPU seconds the box's processes used so far."""
    total = 0.0
    for proc in box.tree.processes():
        times = proc.cpu_times()
        total += times.user + times.system
    return total


async def cpu_grows_by(box: ReducedBox, seconds: float, timeout_s: float = 5.0) -> bool:
    """Whether the box uses `seconds` of CPU within `timeout_s` (polled: on a loaded
    machine a busy loop gets less than a core)."""
    start = tree_cpu_s(box)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if tree_cpu_s(box) - start >= seconds:
            return True
        await asyncio.sleep(0.02)
    return False


def test_reduced_freeze_stops_cpu_and_thaw_resumes(launch_reduced: Launch, loop: Loop) -> None:
    box: ReducedBox = launch_reduced(spec(), SPIN)
    assert loop.run(read_line(box)) == "ready\n"

    assert loop.run(cpu_grows_by(box, 0.1))
    loop.run(box.freeze())
    before = tree_cpu_s(box)
    loop.run(asyncio.sleep(0.5))  # the time over which a frozen box must not run
    frozen_s = tree_cpu_s(box) - before
    loop.run(box.thaw())

    assert frozen_s < 0.01
    assert loop.run(cpu_grows_by(box, 0.1))


def test_reduced_kill_while_frozen_and_destroy_leave_nothing(
    reduced_iso: ReducedIsolation, launch_reduced: Launch, loop: Loop
) -> None:
    box: ReducedBox = launch_reduced(spec(), SPIN)
    assert loop.run(read_line(box)) == "ready\n"
    pids = box.tree.pids()
    loop.run(box.freeze())
    loop.run(box.destroy())

    assert box.process.returncode is not None
    assert not box.box_dir.exists()
    assert pids and all(not running(pid) for pid in pids)
    assert box.oom_kill_count() == 0  # our own kill is not an OOM
    assert reduced_iso.live_boxes() == []


def test_a_sigkill_from_elsewhere_is_reported_as_a_suspect_not_counted(
    reduced_iso: ReducedIsolation, launch_reduced: Launch, loop: Loop
) -> None:
    kills: list[OomKill] = []
    seen = threading.Event()

    def record(kill: OomKill) -> None:
        kills.append(kill)
        seen.set()

    reduced_iso.on_oom(record)
    box: ReducedBox = launch_reduced()
    os.kill(box.process.pid, signal.SIGKILL)  # as the kernel's global OOM killer would
    loop.run(box.process.wait())
    loop.run(asyncio.sleep(0.05))  # let the exit watcher run

    # No kernel record says it was the OOM killer (box code may send it too): a suspect.
    assert seen.is_set() and box.oom_kill_count() == 0
    assert kills[0].sandbox_id == box.sandbox_id and kills[0].pid == box.process.pid


def test_reduced_cleanup_kills_what_a_dead_run_left(
    data_dir: Path, launch_reduced: Launch, loop: Loop
) -> None:
    orphan: ReducedBox = launch_reduced(spec("orphan"))
    restarted = ReducedIsolation(data_dir, host_uids=own_uids())
    done = loop.run(restarted.cleanup_leftovers())
    code = loop.run(orphan.process.wait())

    assert code in (-9, 137)
    assert done == ["killed the processes of orphan", f"deleted {orphan.box_dir}"]
    assert not orphan.box_dir.exists()


@pytest.fixture
def plain_iso(data_dir: Path, agent_file: Path, loop: Loop) -> Iterator[ReducedIsolation]:
    runtime_dir = RUNTIME_ROOT / "reduced" / f"test-{os.getpid()}"
    iso = ReducedIsolation(
        data_dir, use_bwrap=False, agent_script=agent_file, host_uids=own_uids(),
        runtime_dir=runtime_dir,
    )  # fmt: skip
    try:
        yield iso
        for box in iso.live_boxes():
            loop.run(box.destroy())
        loop.run(iso.cleanup_leftovers())
    finally:  # even when a kill failed: no box dir is left in /run
        shutil.rmtree(runtime_dir, ignore_errors=True)
        iso.close()
    assert not runtime_dir.exists()


def test_plain_mode_runs_in_a_directory_of_its_own(plain_iso: ReducedIsolation, loop: Loop) -> None:
    agent = ["/usr/bin/python3", AGENT_PATH_INSIDE]  # no /opt here: the host copy runs
    box: ReducedBox = loop.run(plain_iso.launch(spec(), agent))
    assert loop.run(read_line(box)) == "agent\n"
    home = plain_iso.plain_root / box.sandbox_id / "home"
    (home / "f").write_bytes(b"q" * (1 << 20))

    assert box.usage().disk_used_bytes >= 1 << 20
    assert any("No namespaces" in line for line in plain_iso.limitations)
    loop.run(box.destroy())
    assert not box.box_dir.exists() and not home.exists()


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv('/bin/sleep', ['sleep', '60'])
    os._exit(0)
os.wait()
result = None
"""


def test_plain_mode_as_root_runs_as_the_box_uid(
    plain_iso: ReducedIsolation, loop: Loop, data_dir: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("without root a plain box runs as sandboxd's own uid")
    box: ReducedBox = loop.run(plain_iso.launch(spec(), PROBE))
    assert loop.run(read_line(box)) == "ready\n", box.stderr_path.read_text()
    home = plain_iso.plain_root / box.sandbox_id / "home"
    code = f"""
import os
def readable(path):
    try:
        open(path, 'rb').close(); return True
    except OSError:
        return False
result = [os.getuid(), os.getgroups(), os.getcwd(), readable('/etc/shadow'),
          readable({str(data_dir / "agent.py")!r}),
          [l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd'))]]
"""
    uid, groups, cwd, shadow, data, caps = loop.run(ask(box, code))
    loop.run(ask(box, DAEMON))  # a process out of the box's tree, in a session of its own
    assert box.host_uid is not None
    escaped = [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == box.host_uid]

    assert (uid, groups, cwd) == (box.host_uid, [], str(home))
    assert not shadow and not data  # host secrets and sandboxd's data dir stay closed
    assert caps == ["0000000000000000", "0000000000000000"]
    assert home.stat().st_uid == box.host_uid and home.stat().st_mode & 0o777 == 0o700
    assert len(escaped) >= 2  # the probe and the daemon, at least
    loop.run(box.destroy())
    assert all(not running(p.pid) for p in escaped)  # killed by uid, out of the tree too


def test_plain_cleanup_after_a_crash_kills_the_uid_and_deletes_its_files(
    plain_iso: ReducedIsolation, loop: Loop, data_dir: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("without root a plain box has no uid of its own")
    box: ReducedBox = loop.run(plain_iso.launch(spec("crashed"), PROBE))
    assert loop.run(read_line(box)) == "ready\n", box.stderr_path.read_text()
    loop.run(ask(box, DAEMON))  # outlives the tree's root
    home = plain_iso.plain_root / box.sandbox_id / "home"
    loop.run(ask(box, "open('mine', 'w').write('x'); result = None"))  # a file of the box's uid
    uid = box.host_uid
    restarted = ReducedIsolation(
        data_dir, use_bwrap=False, host_uids=own_uids(), runtime_dir=plain_iso.plain_root
    )
    done = loop.run(restarted.cleanup_leftovers())
    loop.run(box.process.wait())

    assert done == [
        "killed the processes of crashed",
        f"deleted {box.box_dir}",
        f"deleted {home.parent}",
    ]
    assert uid is not None and not any(
        p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
        for p in psutil.process_iter(["uids", "status"])
    )
    assert not home.exists() and not box.box_dir.exists()
