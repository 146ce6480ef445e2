"""Full isolation (root): freeze, thaw, kill, destroy, and recovery after a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandboxd.isolation.cgroups import find_leftover_cgroups
from sandboxd.isolation.disk import find_leftover_mounts
from sandboxd.isolation.full import FullIsolation
from sandboxd.isolation.full_box import FullBox
from sandboxd.isolation.paths import RUNTIME_ROOT
from sandboxd.isolation.polling import wait_until
from sandboxd.isolation.rootfs import ROOTFS_DIRS
from tests.sandboxd.isolation.helpers import PROBE, Launch, Loop, ask, read_line, running, spec

SPIN = ["/usr/bin/python3", "-c", "print('ready', flush=True)\nwhile True: pass"]


def spinning_box(launch_full: Launch, loop: Loop) -> FullBox:
    box: FullBox = launch_full(spec(), SPIN)
    assert loop.run(read_line(box)) == "ready\n"
    return box


def cpu_pct_over(box: FullBox, loop: Loop, seconds: float) -> float:
    box.usage()
    loop.run(asyncio.sleep(seconds))
    return box.usage().cpu_used_pct


def wait_for_cpu_progress(box: FullBox, loop: Loop, cpu_s: float = 0.1) -> None:
    """Wait until the box has used `cpu_s` more CPU seconds (it runs, however busy the
    shared machine is); TimeoutError after 5 s."""
    start_ns = box.cgroups.usage().cpu_ns
    goal_ns = start_ns + int(cpu_s * 1e9)
    loop.run(wait_until(lambda: box.cgroups.usage().cpu_ns >= goal_ns, 5, "CPU progress"))


def test_freeze_stops_cpu_and_thaw_resumes(launch_full: Launch, loop: Loop) -> None:
    box = spinning_box(launch_full, loop)
    wait_for_cpu_progress(box, loop)

    loop.run(box.freeze())
    frozen_pct = cpu_pct_over(box, loop, 1.0)
    loop.run(box.thaw())

    assert frozen_pct < 1
    wait_for_cpu_progress(box, loop)  # runs again


def test_freeze_keeps_state_and_the_channel(launch_full: Launch, loop: Loop) -> None:
    box = launch_full()
    loop.run(ask(box, "import builtins; builtins.n = 41"))  # survives between snippets
    loop.run(box.freeze())
    loop.run(box.thaw())

    assert loop.run(ask(box, "result = n + 1")) == 42


def test_kill_works_while_frozen(launch_full: Launch, loop: Loop) -> None:
    box = spinning_box(launch_full, loop)
    loop.run(box.freeze())
    loop.run(box.kill())

    assert box.process.returncode is not None
    assert not box.cgroups.is_populated()
    loop.run(box.kill())  # idempotent


def test_destroy_leaves_no_cgroup_mount_or_file(
    full_iso: FullIsolation, launch_full: Launch, loop: Loop, cgroup_parent: str
) -> None:
    box = launch_full()
    assert box.disk.is_mounted()
    overlays = box.disk.mount_dir / ".rootfs" / "merged"
    assert find_leftover_mounts(box.disk.mount_dir) == [overlays / n for n in ROOTFS_DIRS]
    loop.run(box.kill())
    loop.run(box.destroy())

    assert not box.cgroups.exists()
    assert find_leftover_cgroups(cgroup_parent) == []
    assert find_leftover_mounts(full_iso.mounts_dir) == []
    assert not box.disk.image_dir.exists() and not box.disk.mount_dir.exists()
    assert full_iso.live_boxes() == []
    loop.run(box.destroy())  # idempotent
    assert box.oom_kill_count() == 0  # still answers, from the last reading
    full_iso.close()
    layout = full_iso.cgroup_layout
    hierarchies = ("memory", "unified") if layout.kind == "hybrid" else ("",)
    assert not any((layout.root / h / cgroup_parent).exists() for h in hierarchies)
    assert not full_iso.mounts_dir.exists()
    # /run/sandboxd goes too, unless another sandboxd (a `make run` beside the tests) is in it
    assert not RUNTIME_ROOT.exists() or any(RUNTIME_ROOT.iterdir())


def test_stderr_goes_to_the_box_log(launch_full: Launch, loop: Loop) -> None:
    box = launch_full()
    loop.run(ask(box, "import sys; sys.stderr.write('to the log\\n'); sys.stderr.flush()"))

    assert box.stderr_path.read_text() == "to the log\n"


def test_a_failed_launch_leaves_nothing(
    full_iso: FullIsolation, loop: Loop, cgroup_parent: str
) -> None:
    with pytest.raises(ValueError):
        loop.run(full_iso.launch(spec("../escape"), PROBE))
    with pytest.raises(OSError):  # memory.limit_in_bytes refuses a negative size
        loop.run(full_iso.launch(spec("bad", memory_mb=-1), PROBE))

    assert find_leftover_cgroups(cgroup_parent) == []
    assert not (full_iso.boxes_dir / "bad").exists()
    assert not (full_iso.mounts_dir / "bad").exists()


def test_a_second_box_with_the_same_id_is_refused(launch_full: Launch) -> None:
    launch_full(spec("twin"))
    with pytest.raises(ValueError, match="already running"):
        launch_full(spec("twin"))


def test_boxes_run_as_distinct_host_uids(launch_full: Launch) -> None:
    first, second = launch_full(spec("one")), launch_full(spec("two"))

    assert first.host_uid != second.host_uid
    assert min(first.host_uid, second.host_uid) >= 1000


def test_cleanup_leftovers_removes_what_a_dead_run_left(
    data_dir: Path,
    cgroup_parent: str,
    mounts_dir: Path,
    agent_file: Path,
    launch_full: Launch,
    loop: Loop,
) -> None:
    # A run that "crashed": its box is still running and mounted, and nobody destroys it.
    orphan: FullBox = launch_full(spec("orphan"))
    pids = orphan.cgroups.pids()
    assert pids
    assert len(find_leftover_mounts(orphan.disk.mount_dir)) == len(ROOTFS_DIRS)  # its overlays

    restarted = FullIsolation(
        data_dir, cgroup_parent, 310_000, agent_script=agent_file, mounts_dir=mounts_dir
    )
    done = loop.run(restarted.cleanup_leftovers())
    loop.run(orphan.process.wait())  # reap it: in a real crash the dead server's child
    restarted.close()

    assert any("removed cgroups" in line for line in done)
    assert any("unmounted" in line for line in done)
    assert find_leftover_cgroups(cgroup_parent) == []
    assert find_leftover_mounts(mounts_dir) == []
    assert not orphan.disk.image_dir.exists() and not orphan.disk.mount_dir.exists()
    assert all(not running(pid) for pid in pids)
    assert loop.run(restarted.cleanup_leftovers()) == []
