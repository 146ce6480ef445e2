"""Which cgroup backend each host layout gets: hybrid (v1 controllers + unified), pure v2,
v2 at unified, and neither; and that full isolation takes the one found."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxd.isolation.cgroups import (
    CGROUP_ROOT,
    CgroupLayout,
    HybridCgroupSet,
    V2CgroupSet,
    cgroups_available,
    detect_cgroup_layout,
    find_leftover_cgroups,
    new_cgroup_set,
)
from sandboxd.isolation.cgroups_v1 import hybrid_mounted
from sandboxd.isolation.full import FullIsolation
from tests.sandboxd.isolation.fake_cgroup2 import FakeCgroup2, make_hybrid_tree


def test_hybrid_host_keeps_the_v1_backend(tmp_path: Path) -> None:
    root = make_hybrid_tree(tmp_path / "cgroup")

    layout = detect_cgroup_layout(root)

    assert (layout.kind, layout.root) == ("hybrid", root)
    assert isinstance(new_cgroup_set("box1", "sandboxd", layout), HybridCgroupSet)


def test_pure_v2_host_gets_the_v2_backend(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup")

    layout = detect_cgroup_layout(fake.root)

    assert (layout.kind, layout.root) == ("v2", fake.root)
    box = new_cgroup_set("box1", "sandboxd", layout)
    assert isinstance(box, V2CgroupSet) and box.path == fake.root / "sandboxd" / "box1"


def test_pure_v2_without_the_controllers_is_neither(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup", controllers=("cpuset", "cpu", "io"))

    layout = detect_cgroup_layout(fake.root)

    assert layout.kind == "none"
    assert layout.reason == "cgroup v2 only, but it does not offer memory, pids"
    with pytest.raises(RuntimeError, match="does not offer memory, pids"):
        new_cgroup_set("box1", "sandboxd", layout)


def test_v1_partly_mounted_with_controllers_in_unified_gets_v2_there(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "cpuset").mkdir(parents=True)
    (root / "cpuset" / "cgroup.procs").write_text("1\n")
    FakeCgroup2(root / "unified", controllers=("cpu", "memory", "pids"))

    layout = detect_cgroup_layout(root)

    assert (layout.kind, layout.root) == ("v2", root / "unified")


def test_no_cgroups_at_all_is_neither(tmp_path: Path) -> None:
    layout = detect_cgroup_layout(tmp_path)

    assert layout.kind == "none"
    assert layout.reason == f"no cgroup hierarchy mounted at {tmp_path / 'memory'}"
    assert find_leftover_cgroups("sandboxd", layout) == []


def test_hybrid_whose_unified_lacks_controllers_stays_neither(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    FakeCgroup2(root / "unified", controllers=("hugetlb",))  # v1 hierarchies not mounted

    layout = detect_cgroup_layout(root)

    assert layout.kind == "none" and "no cgroup hierarchy mounted" in layout.reason


def test_availability_gives_the_layouts_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandboxd.isolation.cgroups.os.geteuid", lambda: 0)
    FakeCgroup2(tmp_path / "cgroup", controllers=("cpu",))

    assert cgroups_available("sandboxd", tmp_path / "cgroup") == (
        False,
        "cgroup v2 only, but it does not offer memory, pids",
    )


def test_this_hybrid_machine_keeps_the_v1_backend() -> None:
    if (CGROUP_ROOT / "cgroup.controllers").is_file() or hybrid_mounted(CGROUP_ROOT):
        pytest.skip("this host is not hybrid")

    layout = detect_cgroup_layout()

    assert (layout.kind, layout.root) == ("hybrid", CGROUP_ROOT)


def test_full_isolation_uses_the_layout_it_is_given(tmp_path: Path) -> None:
    fake = FakeCgroup2(tmp_path / "cgroup")
    layout = detect_cgroup_layout(fake.root)

    iso = FullIsolation(
        tmp_path / "data", "sandboxd", mounts_dir=tmp_path / "mounts", cgroup_layout=layout
    )

    assert iso.cgroup_layout == CgroupLayout("v2", fake.root, layout.reason)
    iso.close()
