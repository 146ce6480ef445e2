"""The cgroup v2 backend against a fake cgroup2 mount (see fake_cgroup2): limits written,
controllers enabled down the tree, usage and OOM counters parsed, freeze and kill files
written, removal retried on EBUSY. Runs without root."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from sandboxd.isolation.cgroups_common import CgroupLimits
from sandboxd.isolation.cgroups_v2 import (
    V2CgroupSet,
    enable_controllers,
    v2_available,
    v2_leftovers,
    v2_remove_empty_parent,
)
from tests.sandboxd.isolation.fake_cgroup2 import FakeCgroup2
from tests.sandboxd.isolation.helpers import Loop

LIMITS = CgroupLimits(memory_bytes=64 << 20, cpu_count=2, max_pids=16)


@pytest.fixture
def fake(tmp_path: Path) -> FakeCgroup2:
    return FakeCgroup2(tmp_path / "cgroup")


def box_set(fake: FakeCgroup2, name: str = "box1", parent: str = "sandboxd") -> V2CgroupSet:
    return V2CgroupSet(name, parent, fake.root, fake)


def test_create_enables_the_controllers_then_writes_the_limits(fake: FakeCgroup2) -> None:
    group = box_set(fake)
    group.create(LIMITS)

    assert fake.writes == [
        ("/cgroup.subtree_control", "+memory +cpu +pids"),
        ("/sandboxd/cgroup.subtree_control", "+memory +cpu +pids"),
        ("/sandboxd/box1/memory.max", str(64 << 20)),
        ("/sandboxd/box1/memory.swap.max", "0"),
        ("/sandboxd/box1/memory.oom.group", "0"),
        ("/sandboxd/box1/cpu.max", "200000 100000"),
        ("/sandboxd/box1/pids.max", "16"),
    ]
    assert (group.path / "memory.max").read_text() == f"{64 << 20}\n"
    assert (group.path / "cpu.max").read_text() == "200000 100000\n"
    assert (group.path / "pids.max").read_text() == "16\n"
    assert (group.path / "cgroup.controllers").read_text() == "cpu memory pids\n"
    assert group.memcg_path == "/sandboxd/box1"
    assert group.procs_files() == [fake.root / "sandboxd" / "box1" / "cgroup.procs"]


def test_controllers_already_enabled_are_not_written_again(fake: FakeCgroup2) -> None:
    box_set(fake, "box1").create(LIMITS)
    fake.writes.clear()
    box_set(fake, "box2").create(LIMITS)

    assert [path for path, _ in fake.writes if path.endswith("subtree_control")] == []


def test_a_nested_parent_is_enabled_at_every_level(fake: FakeCgroup2) -> None:
    group = box_set(fake, "box1", parent="/outer/inner/")
    group.create(LIMITS)

    assert [path for path, _ in fake.writes if path.endswith("subtree_control")] == [
        "/cgroup.subtree_control",
        "/outer/cgroup.subtree_control",
        "/outer/inner/cgroup.subtree_control",
    ]
    assert group.memcg_path == "/outer/inner/box1"


def test_without_swap_accounting_no_swap_limit_is_written(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup", swap=False)
    box_set(fake).create(LIMITS)

    assert not any("swap" in path for path, _ in fake.writes)


def test_a_controller_not_offered_is_refused_and_no_group_is_made(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup", controllers=("cpu", "pids", "hugetlb"))
    group = box_set(fake)

    with pytest.raises(OSError) as caught:
        group.create(LIMITS)

    assert caught.value.errno == errno.ENOENT
    assert "cannot enable memory" in str(caught.value) and "not offered" in str(caught.value)
    assert not group.exists()


def test_a_parent_holding_processes_cannot_pass_controllers_on(fake: FakeCgroup2) -> None:
    fake.mkdir(fake.root / "sandboxd")
    fake.add_process(fake.root / "sandboxd", 4242)

    with pytest.raises(OSError) as caught:
        enable_controllers(fake.root, "sandboxd", fs=fake)

    assert caught.value.errno == errno.EBUSY
    assert "holds processes" in str(caught.value)


def test_a_rejected_limit_removes_the_group_it_made(fake: FakeCgroup2) -> None:
    group = box_set(fake)

    with pytest.raises(OSError) as caught:
        group.create(CgroupLimits(memory_bytes=-1, cpu_count=1, max_pids=1))

    assert caught.value.errno == errno.EINVAL
    assert not group.exists()


def test_an_existing_group_is_not_taken_over(fake: FakeCgroup2) -> None:
    first = box_set(fake)
    first.create(LIMITS)
    fake.add_process(first.path, 77)

    with pytest.raises(FileExistsError):
        box_set(fake).create(CgroupLimits(1 << 20, 1, 1))

    assert first.exists() and first.pids() == [77]
    assert (first.path / "pids.max").read_text() == "16\n"


def test_usage_is_parsed_from_the_kernels_files(fake: FakeCgroup2) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    fake.set_file(group.path, "memory.current", f"{50 << 20}\n")
    stat = (group.path / "memory.stat").read_text()
    for key, value in (("anon", 30 << 20), ("file", 20 << 20), ("inactive_file", 8 << 20)):
        stat = stat.replace(f"\n{key} 0\n", f"\n{key} {value}\n")
    fake.set_file(group.path, "memory.stat", stat)
    fake.set_file(
        group.path,
        "cpu.stat",
        "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 4\n"
        "nr_throttled 1\nthrottled_usec 900\n",
    )
    fake.set_file(group.path, "pids.current", "3\n")
    fake.set_file(
        group.path,
        "memory.events",
        "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
    )

    usage = group.usage()

    assert usage.cpu_ns == 1_234_567_000
    assert usage.mem_working_set_bytes == (50 - 8) << 20
    assert usage.mem_cache_bytes == 20 << 20
    assert usage.mem_limit_bytes == 64 << 20
    assert usage.oom_kills == 2 and usage.pids == 3


def test_an_unlimited_group_reads_its_limit_as_minus_one(fake: FakeCgroup2) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    fake.set_file(group.path, "memory.max", "max\n")

    assert group.usage().mem_limit_bytes == -1


def test_oom_kills_count_processes_not_group_events(fake: FakeCgroup2) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    assert group.oom_kill_count() == 0
    # A group kill (memory.oom.group 1 on an ancestor) of 3 processes: oom_kill counts
    # each of them, oom_group_kill the one event; adding the two would say 4.
    fake.set_file(
        group.path, "memory.events", "low 0\nhigh 0\nmax 40\noom 1\noom_kill 3\noom_group_kill 1\n"
    )

    assert group.oom_kill_count() == 3


def test_freeze_thaw_and_kill_write_the_control_files(fake: FakeCgroup2, loop: Loop) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    fake.add_process(group.path, 101)
    fake.add_process(group.path, 102)
    fake.writes.clear()

    loop.run(group.freeze())
    assert group.events() == {"populated": 1, "frozen": 1}
    loop.run(group.thaw())
    loop.run(group.freeze())
    group.kill()  # while frozen
    loop.run(group.wait_empty())

    assert fake.writes == [
        ("/sandboxd/box1/cgroup.freeze", "1"),
        ("/sandboxd/box1/cgroup.freeze", "0"),
        ("/sandboxd/box1/cgroup.freeze", "1"),
        ("/sandboxd/box1/cgroup.kill", "1"),
    ]
    assert not group.is_populated() and group.pids() == []


def test_kill_of_a_group_already_gone_does_nothing(fake: FakeCgroup2) -> None:
    box_set(fake, "never-made").kill()

    assert fake.writes == []


def test_remove_retries_while_the_kernel_says_busy(fake: FakeCgroup2, loop: Loop) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    fake.busy_rmdirs = 3  # a killed group's tasks still exiting

    loop.run(group.remove())

    assert fake.rmdir_calls == 4 and not group.exists()
    loop.run(group.remove())  # idempotent


def test_remove_gives_up_on_a_group_that_stays_busy(fake: FakeCgroup2, loop: Loop) -> None:
    group = box_set(fake)
    group.create(LIMITS)
    fake.add_process(group.path, 5)  # nobody kills it

    with pytest.raises(TimeoutError):
        loop.run(group.remove(timeout_s=0.05))
    assert group.exists()


def test_leftovers_and_the_empty_parent(fake: FakeCgroup2, loop: Loop) -> None:
    for name in ("b", "a"):
        box_set(fake, name).create(LIMITS)

    assert v2_leftovers("sandboxd", fake.root) == ["a", "b"]
    v2_remove_empty_parent("sandboxd", fake.root, fake)
    assert (fake.root / "sandboxd").is_dir()  # still holds boxes

    for name in ("a", "b"):
        loop.run(box_set(fake, name).remove())
    v2_remove_empty_parent("sandboxd", fake.root, fake)
    assert not (fake.root / "sandboxd").exists()


def test_availability_probe_on_a_v2_host(fake: FakeCgroup2) -> None:
    ok, reason = v2_available("sandboxd", fake.root, fake)

    assert ok, reason
    assert "memory, cpu, pids" in reason
    assert v2_leftovers("sandboxd", fake.root) == []  # the probe is gone


def test_availability_names_the_missing_controllers(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup", controllers=("cpu", "io", "hugetlb"))

    ok, reason = v2_available("sandboxd", fake.root, fake)

    assert not ok
    assert "does not offer memory, pids" in reason


def test_availability_names_a_missing_file(fake: FakeCgroup2) -> None:
    class NoKill(FakeCgroup2):
        def mkdir(self, path: Path) -> None:
            super().mkdir(path)
            (path / "cgroup.kill").unlink()  # as on Linux < 5.14

    old_kernel = NoKill(fake.root)

    ok, reason = v2_available("sandboxd", old_kernel.root, old_kernel)

    assert not ok and reason == "a cgroup v2 group has no cgroup.kill (needs Linux >= 5.14)"
