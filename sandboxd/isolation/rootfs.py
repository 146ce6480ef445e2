"""A full box's writable /usr, /etc and /var: one overlayfs each, mounted by host root.

    lower of /usr   the host's /usr, an idmapped read-only clone (host root's files look
                    box root's). /usr holds no secret: every file in it but the polkit
                    rules dir is world-readable.
    lower of /etc   NOT the host's /etc, whose secrets (/etc/shadow, ssh host keys,
    and of /var     /etc/ssl/private) box root would read through an idmapped clone. A base
                    tree sandboxd copies into `<data_dir>/rootfs/`: what of /etc every host
                    user may read (files o+r, dirs o+rx, symlinks), and a /var skeleton for
                    apt and dpkg (/var/lib/dpkg and /var/cache/debconf, world-readable part
                    only). Idmapped read-only too.
    upper, work     on the box's loop disk (its quota): `<mount_dir>/.rootfs/{upper,work}/`.

The overlays are mounted at `<mount_dir>/.rootfs/merged/{usr,etc,var}`, which bwrap binds
into the box. The lower clones are detached as soon as the overlays hold them (overlayfs
keeps private clones), so only the three overlays stay on the host until `LoopDisk.remove`
detaches every mount under the box's mount dir before unmounting its disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from sandboxd.isolation.idmap import detach, idmapped_readonly_clone, mount_overlay

ROOTFS_DIRS = ("usr", "etc", "var")
_FINGERPRINT = "fingerprint"
# The world-readable part of these host trees goes into the base tree (source, in base).
_COPIED: tuple[tuple[str, str], ...] = (
    ("/etc", "etc"),
    ("/var/lib/dpkg", "var/lib/dpkg"),
    ("/var/cache/debconf", "var/cache/debconf"),
)
# Empty dirs apt and dpkg need (path in base, mode).
_SKELETON = (
    ("var/lib/apt/lists/partial", 0o755),
    ("var/cache/apt/archives/partial", 0o755),
    ("var/log", 0o755),
    ("var/tmp", 0o1777),
)
_WORLD_DIR = stat.S_IROTH | stat.S_IXOTH


def _walk_readable(source: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """(path, lstat) of everything under `source` an unprivileged user may read: files
    with o+r, symlinks, and dirs with o+rx (and their readable contents)."""
    with os.scandir(source) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            st = entry.stat(follow_symlinks=False)
            path = Path(entry.path)
            if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH):
                yield path, st
            elif stat.S_ISDIR(st.st_mode) and st.st_mode & _WORLD_DIR == _WORLD_DIR:
                yield path, st
                yield from _walk_readable(path)


def host_fingerprint() -> str:
    """A hash of what the base tree would copy (names, modes, owners, sizes, mtimes)."""
    digest = hashlib.sha256()
    for source, _ in _COPIED:
        for path, st in _walk_readable(Path(source)) if os.path.isdir(source) else ():
            line = f"{path}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0"
            digest.update(f"{line}{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
    return digest.hexdigest()


def ensure_base_tree(rootfs_dir: Path) -> Path:
    """The base tree (lower of /etc and /var) at `rootfs_dir/tree`, rebuilt when missing or
    when the host's copied trees changed. Returns its path. Needs host root."""
    fingerprint = host_fingerprint()
    tree = rootfs_dir / "tree"
    with contextlib.suppress(OSError):
        if (rootfs_dir / _FINGERPRINT).read_text() == fingerprint and tree.is_dir():
            return tree
    rootfs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(rootfs_dir, 0o700)  # the tree's modes are the boxes', so the dir is closed
    building = rootfs_dir / f"building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    _build_base_tree(building)
    (rootfs_dir / _FINGERPRINT).unlink(missing_ok=True)
    old = rootfs_dir / f"old-{os.getpid()}"
    if tree.exists():
        tree.rename(old)
    building.rename(tree)
    shutil.rmtree(old, ignore_errors=True)
    fd = os.open(rootfs_dir / _FINGERPRINT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:  # the data dir's files are 0600 (SECURITY.md)
        file.write(fingerprint)
    return tree


def _build_base_tree(base: Path) -> None:
    base.mkdir(mode=0o755)
    (base / "var").mkdir(mode=0o755)
    for source, inside in _COPIED:
        if os.path.isdir(source):
            _copy_readable(Path(source), base / inside)
    for inside, mode in _SKELETON:
        path = base / inside
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(path, mode)
    for path in (base / "var" / "lib", base / "var" / "cache"):
        os.chmod(path, 0o755)
    _keep_root_overrides(base / "var/lib/dpkg/statoverride")


def _keep_root_overrides(statoverride: Path) -> None:
    """Drop dpkg's overrides naming a user or group other than root: the box's passwd and
    group are its own (bwrap.identity_files), and dpkg refuses to run at all when an
    override names a group it does not know (ssl-cert's, for /etc/ssl/private, a dir the
    base tree does not hold anyway)."""
    if not statoverride.is_file():
        return
    kept = []
    for line in statoverride.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and {fields[0], fields[1]} <= {"root", "#0"}:
            kept.append(line + "\n")
    statoverride.write_text("".join(kept))


def _copy_readable(source: Path, dest: Path) -> None:
    """Copy what `_walk_readable` yields, owners and modes kept (files lose setuid/setgid)."""
    dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    top = os.stat(source)
    dest.mkdir()
    dirs = [(dest, top)]
    for path, st in _walk_readable(source):
        target = dest / path.relative_to(source)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(path), target)
            os.lchown(target, st.st_uid, st.st_gid)
        elif stat.S_ISDIR(st.st_mode):
            target.mkdir()
            dirs.append((target, st))
        else:
            shutil.copyfile(path, target, follow_symlinks=False)
            os.chown(target, st.st_uid, st.st_gid)
            os.chmod(target, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    for path, st in reversed(dirs):  # modes last: a 0555 dir would refuse its contents
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, stat.S_IMODE(st.st_mode))


class BoxRootfs:
    """The staging dirs of one box's overlays, under its mounted disk."""

    def __init__(self, mount_dir: Path) -> None:
        self.staging = mount_dir / ".rootfs"
        self.merged = self.staging / "merged"
        self._lower = self.staging / "lower"

    def merged_dir(self, name: str) -> Path:
        """Where the overlay of /`name` is mounted (bwrap binds it)."""
        return self.merged / name

    def mount(self, base_tree: Path, userns_fd: int, root_uid: int) -> None:
        """Mount the three overlays (see the module's docstring); `root_uid` (box root's
        host id) owns the uppers. On failure, detaches what it mounted."""
        upper, work = self.staging / "upper", self.staging / "work"
        self.staging.mkdir(mode=0o711)
        for path in (self.merged, self._lower, upper, work):
            path.mkdir(mode=0o711 if path == self.merged else 0o700)
        lowers = {"usr": self._lower / "usr", "base": self._lower / "base"}
        mounted: list[Path] = []
        try:
            for source, target in ((Path("/usr"), lowers["usr"]), (base_tree, lowers["base"])):
                target.mkdir(mode=0o700)
                idmapped_readonly_clone(source, userns_fd, target)
                mounted.append(target)
            for name in ROOTFS_DIRS:
                lower = lowers["usr"] if name == "usr" else lowers["base"] / name
                for path in (upper / name, work / name, self.merged / name):
                    path.mkdir(mode=0o700)
                os.chown(upper / name, root_uid, root_uid)
                os.chmod(upper / name, 0o755)  # the overlay's root: box root's, like /usr
                mount_overlay(lower, upper / name, work / name, self.merged / name)
                mounted.append(self.merged / name)
        except BaseException:
            for path in reversed(mounted):
                with contextlib.suppress(OSError):
                    detach(path)
            raise
        for target in lowers.values():  # the overlays hold their own clones
            detach(target)
