"""A box's disk: a sparse ext4 image, loop-mounted for the box.

ext4 on a loop device gives a hard quota (ENOSPC at the image size), `statvfs` usage and,
unlike tmpfs, files that do not eat the box's memory (their page cache is reclaimable;
tmpfs pages are not, without swap, and got boxes OOM-killed). The image lives in the
(private) data dir; the mount point lives in a runtime dir every uid may walk through
(0711, not list), because bwrap, already running as the box's uid, walks the path of
every bind source, even one given as an fd, and the data dir may well be 0700 (or under
/root). The mounted root itself belongs to the box's host uid, mode 0700: the box's
uid walks through it, no other host user can, so nobody else reaches its /tmp (1777
inside the box) or its home. Names are opaque (`paths.new_box_name`), never sandbox ids.

    <image_dir>/disk.img            the sparse image, 0600
    <mount_dir>/                    its mount point; the mounted root: box root's uid, 0700
    <mount_dir>/home                the sandbox user's home (host uid of the box's user, 0700)
    <mount_dir>/tmp                 the box's /tmp (1777, box root's, reachable only through
                                    the mounted root)
    <mount_dir>/root                box root's home, /root in the box (box root's uid, 0700)
    <mount_dir>/.sandboxd           host-only files, e.g. the box's stderr log (root, 0700)
    <mount_dir>/.rootfs             the overlays of the box's /usr, /etc, /var (rootfs.py)

Mounts under the mount point (the overlays) are detached before the disk is unmounted,
and nothing is deleted while any mount is left under it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sandboxd.isolation.idmap import detach as detach_mount

MKFS = "/usr/sbin/mkfs.ext4"
MOUNT = "/usr/bin/mount"
UMOUNT = "/usr/bin/umount"
LOSETUP = "/usr/sbin/losetup"
_TOOL_TIMEOUT_S = 20.0


class DiskError(RuntimeError):
    """mkfs, mount or umount failed; the message has the tool's stderr."""


@dataclass(frozen=True)
class DiskUsage:
    """Filesystem usage in bytes, as `statvfs` sees it (ext4 metadata counts as used)."""

    used_bytes: int
    total_bytes: int


def mkfs_argv(image: Path) -> list[str]:
    """No journal (nothing to recover: the image dies with the box), no root reserve, no
    discard pass at format time (the fresh sparse image has nothing to discard)."""
    return [MKFS, "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "nodiscard", str(image)]


def mount_argv(image: Path, mount_dir: Path) -> list[str]:
    """`discard` lets deleted files give their blocks back to the sparse image."""
    return [MOUNT, "-o", "loop,discard,nosuid,nodev", str(image), str(mount_dir)]


async def run_tool(argv: list[str], timeout_s: float = _TOOL_TIMEOUT_S) -> None:
    """Run a tool; DiskError with its stderr when it fails or takes over timeout_s."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DiskError(f"{argv[0]} took over {timeout_s} s") from None
    if proc.returncode != 0:
        raise DiskError(f"{' '.join(argv)}: exit {proc.returncode}: {err.decode().strip()}")


def statvfs_usage(path: Path) -> DiskUsage:
    """Used and total bytes of the filesystem holding `path`."""
    st = os.statvfs(path)
    return DiskUsage(
        used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
        total_bytes=st.f_blocks * st.f_frsize,
    )


class LoopDisk:
    """The loop-mounted disk of one box. It creates and deletes `image_dir` and
    `mount_dir` (both must not exist before `create`)."""

    def __init__(self, image_dir: Path, mount_dir: Path) -> None:
        self.image_dir = image_dir
        self.image = image_dir / "disk.img"
        self.mount_dir = mount_dir
        self.home_dir = mount_dir / "home"
        self.tmp_dir = mount_dir / "tmp"
        self.root_home_dir = mount_dir / "root"
        self.private_dir = mount_dir / ".sandboxd"

    async def create(self, size_mb: int, owner_uid: int, root_uid: int | None = None) -> float:
        """Make, format and mount the image; returns the seconds it took. On failure,
        removes what it made. `owner_uid` owns `home` (the host uid of the box's user);
        `root_uid` (box root's host uid, default `owner_uid`) owns the rest."""
        started = time.monotonic()
        self.image_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
        try:
            self.mount_dir.mkdir(mode=0o700, exist_ok=False)
        except BaseException:
            self.image_dir.rmdir()
            raise
        try:
            _make_sparse_file(self.image, size_mb << 20)
            await run_tool(mkfs_argv(self.image))
            await run_tool(mount_argv(self.image, self.mount_dir))
            self._make_dirs(owner_uid, owner_uid if root_uid is None else root_uid)
        except BaseException:
            await self.remove()
            raise
        return time.monotonic() - started

    def _make_dirs(self, owner_uid: int, root_uid: int) -> None:
        self.home_dir.mkdir(mode=0o700)
        os.chown(self.home_dir, owner_uid, owner_uid)
        self.tmp_dir.mkdir()
        os.chmod(self.tmp_dir, 0o1777)  # mkdir's mode is masked by the umask
        os.chown(self.tmp_dir, root_uid, root_uid)
        self.root_home_dir.mkdir(mode=0o700)
        os.chown(self.root_home_dir, root_uid, root_uid)
        self.private_dir.mkdir(mode=0o700)
        # Last: bwrap walks in as box root (it resolves the binds by path), nobody else
        # does. Root (sandboxd) needs no permission bits.
        os.chown(self.mount_dir, root_uid, root_uid)
        os.chmod(self.mount_dir, 0o700)

    def is_mounted(self) -> bool:
        """True while something is mounted on `mount_dir`."""
        return os.path.ismount(self.mount_dir)

    def usage(self) -> DiskUsage:
        """Used and total bytes of the box's filesystem."""
        return statvfs_usage(self.mount_dir)

    async def remove(self, timeout_s: float = 5.0, detach: bool = False) -> None:
        """Unmount (retrying while busy, lazily as a last resort), then delete the mount
        point and the image. `detach` also frees loop devices a crashed run left on the
        image (a normal unmount frees its own: `mount -o loop` sets autoclear).
        Idempotent."""
        for nested in find_leftover_mounts(self.mount_dir):  # deepest first
            detach_mount(nested)
        if self.is_mounted():
            await self._unmount(timeout_s)
        if self.is_mounted() or find_leftover_mounts(self.mount_dir):
            raise DiskError(f"{self.mount_dir} is still mounted; not deleting it")
        if detach:
            await detach_loops(self.image)
        shutil.rmtree(self.mount_dir, ignore_errors=True)
        shutil.rmtree(self.image_dir, ignore_errors=True)

    async def _unmount(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await run_tool([UMOUNT, str(self.mount_dir)])
                return
            except DiskError:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.05)
        # Something on the host still holds it open: detach now, the kernel frees it later.
        await run_tool([UMOUNT, "--lazy", str(self.mount_dir)])


async def detach_loops(image: Path) -> None:
    """Detach loop devices still backed by `image` (left when a mount went wrong)."""
    if not image.exists():
        return
    proc = await asyncio.create_subprocess_exec(
        LOSETUP, "-j", str(image), "-O", "NAME", "-n", stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    for device in out.decode().split():
        await run_tool([LOSETUP, "-d", device])


def _make_sparse_file(path: Path, size_bytes: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size_bytes)
    finally:
        os.close(fd)


def _unescape_mountinfo(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def find_leftover_mounts(
    boxes_dir: Path, mountinfo: Path = Path("/proc/self/mountinfo")
) -> list[Path]:
    """Mount points under `boxes_dir` (e.g. `<boxes_dir>/<id>/mnt`), deepest first."""
    prefix = str(boxes_dir.resolve()) + "/"
    found = []
    for line in mountinfo.read_text().splitlines():
        point = _unescape_mountinfo(line.split()[4])
        if point.startswith(prefix):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def loop_disk_works(image_dir: Path, mount_dir: Path) -> tuple[bool, str]:
    """Whether a small image can be made in `image_dir`, formatted, mounted on
    `mount_dir` and unmounted (both are made and removed). Synchronous, for start-up
    checks; returns (ok, reason)."""
    image = image_dir / "disk.img"
    steps = [mkfs_argv(image), mount_argv(image, mount_dir), [UMOUNT, str(mount_dir)]]
    try:
        image_dir.mkdir(parents=True)
        mount_dir.mkdir(parents=True)
        _make_sparse_file(image, 16 << 20)
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, timeout=_TOOL_TIMEOUT_S, check=False)
            if done.returncode != 0:
                return False, f"{argv[0]} failed: {done.stderr.decode().strip()}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"loop-mounted ext4 does not work: {exc}"
    finally:
        if os.path.ismount(mount_dir):
            subprocess.run([UMOUNT, "--lazy", str(mount_dir)], check=False, timeout=_TOOL_TIMEOUT_S)
        shutil.rmtree(image_dir, ignore_errors=True)
        if not os.path.ismount(mount_dir):
            shutil.rmtree(mount_dir, ignore_errors=True)
    return True, "loop-mounted ext4 images work"
