"""Reduced isolation run by a plain user (no root, no capabilities): boxes run as that user,
and their process limit still holds, counted over the user's every process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from sandboxd.isolation import reduced
from tests.security.second_user import ATTACKER_UID, run_as_attacker

REPOSITORY = Path(__file__).resolve().parents[3]
MAX_PROCESSES = 40
# Run in the box: its uid, its RLIMIT_NPROC, then a bounded bomb of sleeps, killed after.
BOX_BOMB = """
import json, os, resource, signal
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
print(json.dumps([resource.getrlimit(resource.RLIMIT_NPROC)[0], len(pids), refused]))
"""
# Run on the host as the plain user: one reduced box, the bomb, the box's host uid.
HOST_SCRIPT = """
import sys
sys.path[:0] = {paths!r}
import asyncio, json, tempfile
from pathlib import Path
from sandboxd.isolation.base import BoxSpec
from sandboxd.isolation.reduced import ReducedIsolation, nproc_limit

async def main():
    iso = ReducedIsolation(Path(tempfile.mkdtemp(dir='/tmp')), reasons=['test'])
    spec = BoxSpec('plain-user', cpu_count=1, memory_mb=256, disk_size_mb=16, max_processes={max})
    limit_at_launch = nproc_limit({max})
    box = await iso.launch(spec, ['/usr/bin/python3', '-c', {bomb!r}])
    try:
        host_uid = Path(f'/proc/{{box.process.pid}}/status').read_text().split('Uid:')[1].split()[0]
        out = await asyncio.wait_for(box.process.stdout.readline(), 30)
    finally:
        await box.destroy()
    print(json.dumps([int(host_uid), limit_at_launch, *json.loads(out)]))

asyncio.run(main())
"""


def test_a_plain_users_boxes_run_as_it_with_a_process_limit() -> None:
    site = next(p for p in sys.path if p.endswith("site-packages") and str(REPOSITORY) in p)
    if not os.access(reduced.PRLIMIT, os.X_OK):
        pytest.skip("prlimit is not installed")
    script = HOST_SCRIPT.format(
        paths=[str(REPOSITORY), site], max=MAX_PROCESSES, bomb=BOX_BOMB
    )  # run_as_attacker skips unless root, which may become the plain user
    done = run_as_attacker(script, timeout_s=60)
    if "bwrap" in done.stderr and "No permissions" in done.stderr:
        pytest.skip("bwrap cannot make a user namespace as a plain user here")
    assert done.returncode == 0, done.stderr
    host_uid, limit, soft, held, refused = json.loads(done.stdout.splitlines()[-1])

    assert host_uid == ATTACKER_UID  # the user's own uid, not root
    assert soft == limit >= MAX_PROCESSES  # the user's processes at launch + the box's share
    assert held < limit and refused == 11  # EAGAIN: the limit holds


def test_the_limit_never_exceeds_sandboxds_own_hard_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandboxd.isolation.reduced.resource.getrlimit", lambda _: (10, 10))

    assert reduced.nproc_limit(MAX_PROCESSES) == 10  # prlimit could not set more anyway
