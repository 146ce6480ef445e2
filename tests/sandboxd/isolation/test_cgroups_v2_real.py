"""The cgroup v2 backend on this machine's real cgroup2 mount (root only).

Here (hybrid) the mount offers no memory, cpu or pids controller, so what runs is what
does not need them: groups made, joined, frozen, killed while frozen and removed;
cpu.stat `usage_usec`; subtree_control enabled level by level with a controller the mount
does offer (hugetlb), and refused for a level that holds a process; and the refusal, with
its reason, of a box where memory, cpu and pids are missing. On a v2 host that offers them,
`test_a_box_set_on_a_host_that_offers_the_controllers` runs the whole set instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxd.isolation.cgroups import CGROUP_ROOT, UNIFIED
from sandboxd.isolation.cgroups_common import (
    CgroupLimits,
    V2Group,
    join_shim_argv,
    remove_groups,
    write_cgroup_file,
)
from sandboxd.isolation.cgroups_v2 import (
    V2_CONTROLLERS,
    V2CgroupSet,
    cpu_usage_ns,
    enable_controllers,
    offered_controllers,
    v2_available,
)
from sandboxd.isolation.polling import wait_until
from tests.sandboxd.isolation.helpers import Loop

# The controller used to show enabling on a hybrid host: present in its cgroup2 mount and
# harmless to enable (no limit is set with it).
SPARE_CONTROLLER = "hugetlb"


def real_v2_root() -> Path | None:
    for path in (CGROUP_ROOT, CGROUP_ROOT / UNIFIED):
        if (path / "cgroup.controllers").is_file():
            return path
    return None


@pytest.fixture
def v2_root() -> Path:
    root = real_v2_root()
    if os.geteuid() != 0 or root is None:
        pytest.skip("needs root and a cgroup2 mount")
    return root


@pytest.fixture
def parent(v2_root: Path, loop: Loop) -> Iterator[str]:
    """A parent of this test under the real mount; everything in it is killed and removed
    at the end, and the root's subtree_control is put back as it was."""
    name = f"sbx-v2-test-{os.getpid()}"
    enabled_before = (v2_root / "cgroup.subtree_control").read_text().split()
    yield name
    top = v2_root / name
    groups = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for group in groups:
        V2Group(group).kill()
    if top.is_dir():
        loop.run(remove_groups([*groups, top], timeout_s=5.0))
    enabled_now = (v2_root / "cgroup.subtree_control").read_text().split()
    for controller in (c for c in enabled_now if c not in enabled_before):
        with contextlib.suppress(OSError):  # EBUSY: a group made meanwhile by another uses it
            write_cgroup_file(v2_root / "cgroup.subtree_control", f"-{controller}")


def test_freeze_kill_and_cpu_usage_on_a_real_group(v2_root: Path, parent: str, loop: Loop) -> None:
    (v2_root / parent).mkdir()
    group = V2Group(v2_root / parent / "box1")
    group.path.mkdir()
    spin = "import time\nend = time.monotonic() + 0.2\nwhile time.monotonic() < end: pass\n"
    argv = [sys.executable, "-c", spin + "print('spun', flush=True)\ntime.sleep(30)"]
    worker = subprocess.Popen(
        join_shim_argv([group.path / "cgroup.procs"], argv), stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "spun\n"
        assert group.pids() == [worker.pid]
        assert cpu_usage_ns(group.path) >= 150_000_000  # the 0.2 s spin, in ns

        loop.run(group.freeze())
        assert group.events() == {"populated": 1, "frozen": 1}
        loop.run(group.thaw())
        loop.run(group.freeze())
        group.kill()  # while frozen
        loop.run(group.wait_empty())
        assert worker.wait(5) == -9
    finally:
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    assert group.events() == {"populated": 0, "frozen": 1}


def test_subtree_control_is_enabled_down_to_the_parent(v2_root: Path, parent: str) -> None:
    if SPARE_CONTROLLER not in offered_controllers(v2_root):
        pytest.skip(f"the cgroup2 mount offers no {SPARE_CONTROLLER}")
    nested = f"{parent}/inner"

    enable_controllers(v2_root, nested, (SPARE_CONTROLLER,))
    (v2_root / nested / "box1").mkdir()

    for level in (v2_root, v2_root / parent, v2_root / nested):
        assert SPARE_CONTROLLER in (level / "cgroup.subtree_control").read_text().split()
    assert (v2_root / nested / "box1" / "cgroup.controllers").read_text().split() == [
        SPARE_CONTROLLER
    ]
    assert list((v2_root / nested / "box1").glob(f"{SPARE_CONTROLLER}.*"))


def test_a_level_holding_a_process_cannot_pass_controllers_on(
    v2_root: Path, parent: str, loop: Loop
) -> None:
    if SPARE_CONTROLLER not in offered_controllers(v2_root):
        pytest.skip(f"the cgroup2 mount offers no {SPARE_CONTROLLER}")
    enable_controllers(v2_root, parent, (SPARE_CONTROLLER,))
    busy = v2_root / parent / "busy"
    busy.mkdir()
    sleeper = subprocess.Popen(join_shim_argv([busy / "cgroup.procs"], ["/bin/sleep", "30"]))
    try:
        loop.run(wait_until(V2Group(busy).is_populated, 5, "the sleeper in its group"))
        with pytest.raises(OSError) as caught:
            enable_controllers(v2_root, f"{parent}/busy", (SPARE_CONTROLLER,))
    finally:
        sleeper.kill()
        sleeper.wait()

    assert caught.value.errno == errno.EBUSY and "holds processes" in str(caught.value)


def test_a_box_is_refused_where_the_controllers_are_missing(v2_root: Path, parent: str) -> None:
    missing = [c for c in V2_CONTROLLERS if c not in offered_controllers(v2_root)]
    if not missing:
        pytest.skip("this cgroup2 mount offers memory, cpu and pids")
    box = V2CgroupSet("box1", parent, v2_root)

    with pytest.raises(OSError) as caught:
        box.create(CgroupLimits(64 << 20, 1, 16))
    ok, reason = v2_available(parent, v2_root)

    assert caught.value.errno == errno.ENOENT and "not offered" in str(caught.value)
    assert not box.exists()
    assert not ok and f"does not offer {', '.join(missing)}" in reason


def test_a_box_set_on_a_host_that_offers_the_controllers(
    v2_root: Path, parent: str, loop: Loop
) -> None:
    if any(c not in offered_controllers(v2_root) for c in V2_CONTROLLERS):
        pytest.skip("this cgroup2 mount does not offer memory, cpu and pids (hybrid host)")
    box = V2CgroupSet("box1", parent, v2_root)
    box.create(CgroupLimits(64 << 20, 2, 16))
    sleeper = subprocess.Popen(join_shim_argv(box.procs_files(), ["/bin/sleep", "30"]))
    try:
        loop.run(wait_until(box.is_populated, 5, "the sleeper in its group"))
        usage = box.usage()
        loop.run(box.freeze())
        box.kill()
        loop.run(box.wait_empty())
        loop.run(box.remove())
    finally:
        sleeper.kill()
        sleeper.wait()

    assert usage.mem_limit_bytes == 64 << 20 and usage.pids == 1
    enabled = (v2_root / parent / "cgroup.subtree_control").read_text().split()
    assert set(V2_CONTROLLERS) <= set(enabled)
    assert not box.exists()
