"""A box's loop-mounted ext4 disk (root): layout, usage, quota, removal, leftovers."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxd.isolation.disk import LoopDisk, find_leftover_mounts, loop_disk_works
from sandboxd.isolation.paths import new_box_name
from tests.sandboxd.isolation.helpers import Loop


@pytest.fixture
def disk(data_dir: Path, mounts_dir: Path, loop: Loop) -> Iterator[LoopDisk]:
    if os.geteuid() != 0:
        pytest.skip("loop mounts need root")
    mounts_dir.mkdir(parents=True)
    box = LoopDisk(data_dir / "boxes" / "d1", mounts_dir / "d1")
    loop.run(box.create(size_mb=32, owner_uid=123_456))
    yield box
    loop.run(box.remove())


def test_layout_and_owners(disk: LoopDisk) -> None:
    home, tmp = os.stat(disk.home_dir), os.stat(disk.tmp_dir)

    assert disk.is_mounted()
    assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (123_456, 0o700)
    assert stat.S_IMODE(tmp.st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(disk.image).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(disk.image_dir).st_mode) == 0o700
    root = os.stat(disk.mount_dir)  # the box's uid walks through it, no other user can
    assert (root.st_uid, stat.S_IMODE(root.st_mode)) == (123_456, 0o700)


def test_box_names_are_fresh_and_say_nothing() -> None:
    names = {new_box_name() for _ in range(100)}

    assert len(names) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", name) for name in names)


def test_usage_follows_writes_and_the_image_stays_sparse(disk: LoopDisk) -> None:
    before = disk.usage()
    (disk.home_dir / "f").write_bytes(b"z" * (4 << 20))
    os.sync()
    after = disk.usage()

    assert after.used_bytes - before.used_bytes >= 4 << 20
    assert 28 << 20 < after.total_bytes <= 32 << 20
    assert os.stat(disk.image).st_blocks * 512 < 16 << 20


def test_remove_unmounts_and_deletes(disk: LoopDisk, loop: Loop, mounts_dir: Path) -> None:
    loop.run(disk.remove())

    assert not disk.is_mounted()
    assert not disk.image_dir.exists() and not disk.mount_dir.exists()
    assert find_leftover_mounts(mounts_dir) == []
    loop.run(disk.remove())  # idempotent


def test_leftover_mounts_are_found(disk: LoopDisk, mounts_dir: Path) -> None:
    assert find_leftover_mounts(mounts_dir) == [disk.mount_dir]


def test_mountinfo_escapes_are_decoded(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "1 2 7:0 / /data/boxes/a\\040b/mnt rw - ext4 /dev/loop0 rw\n"
        "3 2 8:0 / /elsewhere rw - ext4 /dev/vda rw\n"
    )

    assert find_leftover_mounts(Path("/data/boxes"), mountinfo) == [Path("/data/boxes/a b/mnt")]


def test_loop_disk_probe(data_dir: Path, mounts_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("loop mounts need root")
    ok, why = loop_disk_works(data_dir / "probe", mounts_dir / "probe")

    assert ok, why
    assert list(data_dir.iterdir()) == [] and list(mounts_dir.iterdir()) == []
