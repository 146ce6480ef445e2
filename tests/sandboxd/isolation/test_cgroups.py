"""A box's hybrid cgroup set on this machine (root): limits, errors, shim, freeze, kill,
remove. The v2 backend: test_cgroups_v2.py (fake cgroupfs), test_cgroups_v2_real.py."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxd.isolation.cgroups import (
    CFS_PERIOD_US,
    UNIFIED,
    CgroupLimits,
    HybridCgroupSet,
    cgroups_available,
    detect_cgroup_layout,
    find_leftover_cgroups,
    join_shim_argv,
    read_keyed,
    write_cgroup_file,
)
from sandboxd.isolation.polling import wait_until
from tests.sandboxd.isolation.helpers import Loop


def test_read_keyed_parses_flat_files(tmp_path: Path) -> None:
    path = tmp_path / "memory.oom_control"
    path.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")

    assert read_keyed(path) == {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}


@pytest.fixture
def cgroups(cgroup_parent: str, loop: Loop) -> Iterator[HybridCgroupSet]:
    if detect_cgroup_layout().kind != "hybrid":
        pytest.skip("not a hybrid host (the v2 backend has its own tests)")
    ok, why = cgroups_available(cgroup_parent)
    if not ok:
        pytest.skip(why)
    group = HybridCgroupSet("unit", cgroup_parent)
    group.create(CgroupLimits(memory_bytes=64 << 20, cpu_count=2, max_pids=16))
    yield group
    group.kill()
    loop.run(group.wait_empty())
    loop.run(group.remove())


def test_create_sets_the_limits(cgroups: HybridCgroupSet) -> None:
    assert (cgroups.dirs["memory"] / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
    assert (cgroups.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == f"{2 * CFS_PERIOD_US}\n"
    assert (cgroups.dirs["pids"] / "pids.max").read_text() == "16\n"


def test_a_rejected_value_raises_instead_of_passing_silently(cgroups: HybridCgroupSet) -> None:
    with pytest.raises(OSError) as caught:
        write_cgroup_file(cgroups.dirs["pids"] / "pids.max", "lots")

    assert caught.value.errno == errno.EINVAL


def test_an_existing_group_is_not_taken_over(cgroups: HybridCgroupSet, cgroup_parent: str) -> None:
    with pytest.raises(FileExistsError):
        HybridCgroupSet("unit", cgroup_parent).create(CgroupLimits(1 << 20, 1, 1))

    assert cgroups.exists()  # the failed create removed nothing of the first one


def test_shim_puts_the_process_in_every_group_before_exec(
    cgroups: HybridCgroupSet, cgroup_parent: str
) -> None:
    argv = join_shim_argv(cgroups.procs_files(), ["/bin/cat", "/proc/self/cgroup"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=True).stdout
    lines = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in out.splitlines()}

    for controller in ("memory", "cpu", "cpuacct", "pids", ""):  # "" is the v2 line
        assert lines[controller] == f"/{cgroup_parent}/unit"


def test_shim_refuses_to_run_outside_its_groups(tmp_path: Path) -> None:
    argv = join_shim_argv([tmp_path / "missing" / "cgroup.procs"], ["/bin/echo", "ran"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=5)

    assert done.returncode == 125 and "ran" not in done.stdout


def test_freeze_kill_and_remove(cgroups: HybridCgroupSet, cgroup_parent: str, loop: Loop) -> None:
    argv = join_shim_argv(cgroups.procs_files(), ["/bin/sleep", "30"])
    sleeper = subprocess.Popen(argv)
    try:
        loop.run(wait_until(cgroups.is_populated, 5, "the sleeper in its group"))
        loop.run(cgroups.freeze())
        assert cgroups.events() == {"populated": 1, "frozen": 1}
        cgroups.kill()  # while frozen
        loop.run(cgroups.wait_empty())
        assert sleeper.wait(5) == -9
        usage = cgroups.usage()
        loop.run(cgroups.remove())
    finally:
        sleeper.kill()
        sleeper.wait()

    assert usage.pids == 0 and usage.mem_limit_bytes == 64 << 20
    assert not cgroups.exists()
    assert not (cgroups.dirs[UNIFIED]).exists()
    assert find_leftover_cgroups(cgroup_parent) == []
