"""Full isolation (root): the box's limits hold and the host stays fine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time

from sandboxd.isolation.base import OomKill
from sandboxd.isolation.full import FullIsolation
from tests.sandboxd.isolation.helpers import Launch, Loop, ask, read_line, spec

FORK_BOMB = """
import os, sys
print("ready", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def test_fork_bomb_is_stopped_by_pids_max_then_killed(launch_full: Launch, loop: Loop) -> None:
    box = launch_full(spec(max_processes=32), ["/usr/bin/python3", "-c", FORK_BOMB])
    assert loop.run(read_line(box)) == "ready\n"

    time.sleep(0.5)  # let it hit the wall
    pids_now = box.cgroups.usage().pids
    host_ok = subprocess.run(["/usr/bin/true"], timeout=5).returncode
    loop.run(box.kill())

    assert pids_now == 32
    assert host_ok == 0
    assert not box.cgroups.is_populated()
    assert box.process.returncode is not None


def test_memory_bomb_is_oom_killed_and_reported_and_the_box_survives(
    full_iso: FullIsolation, launch_full: Launch, loop: Loop
) -> None:
    kills: list[OomKill] = []
    seen = threading.Event()

    def record(kill: OomKill) -> None:
        kills.append(kill)
        seen.set()

    full_iso.on_oom(record)
    box = launch_full(spec(memory_mb=64))
    code = """
import subprocess
hog = "x = bytearray(256 * 1024 * 1024); import time; time.sleep(5)"
result = subprocess.run(['python3', '-c', hog]).returncode
"""
    hog_exit = loop.run(ask(box, code))
    assert seen.wait(5), "the watcher reported no OOM kill"

    assert hog_exit == -9
    assert loop.run(ask(box, "result = 'alive'")) == "alive"
    assert box.oom_kill_count() == 1
    [kill] = kills
    assert kill.sandbox_id == box.sandbox_id
    assert kill.process_name == "python3"
    assert kill.pid is not None and kill.pid not in box.cgroups.pids()
    assert kill.memory_limit_bytes == 64 << 20


def test_filling_the_disk_gives_enospc_at_the_quota(launch_full: Launch, loop: Loop) -> None:
    box = launch_full(spec(disk_size_mb=32))
    host_free_before = os.statvfs(box.disk.image_dir).f_bavail
    code = """
import errno, os
written = 0
chunk = b"x" * (1 << 20)
try:
    with open('/home/user/fill', 'wb') as f:
        while written < 200 << 20:
            f.write(chunk); f.flush(); written += len(chunk)
    err = None
except OSError as exc:
    err = exc.errno
try:
    open('/tmp/more', 'wb').write(chunk)
    tmp_err = None
except OSError as exc:
    tmp_err = exc.errno
result = [written, err, tmp_err]
"""
    written, err, tmp_err = loop.run(ask(box, code))
    usage = box.usage()
    image_bytes = os.stat(box.disk.image).st_blocks * 512
    image_fs = os.statvfs(box.disk.image_dir)  # its own block size: not always /'s
    host_drop = (host_free_before - image_fs.f_bavail) * image_fs.f_frsize

    assert err == 28 and tmp_err == 28  # ENOSPC, /tmp shares the quota
    assert 24 << 20 <= written <= 32 << 20
    assert usage.disk_used_bytes >= 24 << 20
    assert usage.disk_total_bytes <= 32 << 20
    assert image_bytes <= 33 << 20  # the sparse image grew no bigger than the quota
    assert host_drop <= 40 << 20


def test_usage_reports_cpu_memory_and_disk(launch_full: Launch, loop: Loop) -> None:
    box = launch_full(spec(cpu_count=1, memory_mb=256))
    box.usage()
    code = """
import time
global hold
hold = bytearray(64 << 20)
open('/home/user/f', 'wb').write(b'y' * (8 << 20))
end = time.monotonic() + 0.5
while time.monotonic() < end:
    pass
result = 1
"""
    loop.run(ask(box, code))
    usage = box.usage()

    assert usage.cpu_used_pct > 40
    assert usage.mem_used_bytes >= 64 << 20
    assert usage.mem_total_bytes == 256 << 20
    assert usage.disk_used_bytes >= 8 << 20
    assert 0.85 * (64 << 20) < usage.disk_total_bytes <= 64 << 20  # ext4 keeps some


def test_cpu_quota_holds_a_box_to_its_cores(launch_full: Launch, loop: Loop) -> None:
    burn = "import os\nprint('ready', flush=True)\nos.fork()\nwhile True: pass"
    box = launch_full(spec(cpu_count=1), ["/usr/bin/python3", "-c", burn])
    assert loop.run(read_line(box)) == "ready\n"
    start_ns = box.cgroups.usage().cpu_ns
    loop.run(asyncio.sleep(1.0))
    used_cores = (box.cgroups.usage().cpu_ns - start_ns) / 1e9 / 1.0

    assert used_cores < 1.15  # two spinning processes, one core's quota
