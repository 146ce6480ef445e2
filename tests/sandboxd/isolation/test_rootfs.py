"""The base tree of a full box's /etc and /var (rootfs.py): only what every host user may
read, rebuilt only when the host's trees change."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandboxd.isolation.rootfs import _walk_readable, ensure_base_tree

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="copying owners needs root")


def test_only_world_readable_entries_are_walked(tmp_path: Path) -> None:
    (tmp_path / "public").write_text("p")
    os.chmod(tmp_path / "public", 0o644)
    (tmp_path / "secret").write_text("s")
    os.chmod(tmp_path / "secret", 0o640)
    (tmp_path / "closed").mkdir(mode=0o700)
    (tmp_path / "closed" / "inside").write_text("i")
    os.chmod(tmp_path / "closed" / "inside", 0o644)  # readable, but its dir is not walkable
    (tmp_path / "open").mkdir(mode=0o755)
    (tmp_path / "open" / "nested").write_text("n")
    os.chmod(tmp_path / "open" / "nested", 0o444)
    (tmp_path / "link").symlink_to("secret")

    names = [path.relative_to(tmp_path).as_posix() for path, _ in _walk_readable(tmp_path)]

    assert names == ["link", "open", "open/nested", "public"]


@needs_root
def test_the_base_tree_holds_no_file_a_host_user_could_not_read(tmp_path: Path) -> None:
    tree = ensure_base_tree(tmp_path / "rootfs")

    assert not (tree / "etc/shadow").exists() and not (tree / "etc/gshadow").exists()
    assert not (tree / "etc/ssl/private").exists()
    for path in tree.rglob("*"):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
        assert st.st_mode & needed == needed, path
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID) or path.is_dir(), path
        host = Path("/") / path.relative_to(tree)
        if path.is_file() and host.is_file():
            host_st = host.stat()
            assert host_st.st_mode & stat.S_IROTH, f"{host} is not world-readable on the host"
            assert (st.st_uid, st.st_gid) == (host_st.st_uid, host_st.st_gid), path
    assert oct((tree / "var/tmp").stat().st_mode & 0o7777) == "0o1777"
    assert (tree / "var/lib/apt/lists/partial").is_dir()
    assert (tree / "var/lib/dpkg/status").read_bytes() == Path("/var/lib/dpkg/status").read_bytes()
    overrides = tree / "var/lib/dpkg/statoverride"
    if overrides.exists():
        assert all(
            line.split()[:2] == ["root", "root"] for line in overrides.read_text().splitlines()
        )


@needs_root
def test_the_base_tree_is_reused_until_the_host_differs(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    first = ensure_base_tree(rootfs)
    inode = first.stat().st_ino

    assert ensure_base_tree(rootfs).stat().st_ino == inode  # same tree: not rebuilt
    (rootfs / "fingerprint").write_text("the host of another day")
    rebuilt = ensure_base_tree(rootfs)
    assert rebuilt == first and rebuilt.stat().st_ino != inode
    assert sorted(p.name for p in rootfs.iterdir()) == ["fingerprint", "tree"]
