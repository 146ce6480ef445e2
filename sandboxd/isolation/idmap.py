"""Mount syscalls Python's os module lacks: idmapped read-only clones, overlays, detach.

An idmapped mount shows a directory's files through a user namespace's map: with a box's
namespace (box id N = host id R + N), files of host id N look owned by box id N, so box
root owns what host root owns there. Only trees that hold no secret are ever mapped so
(rootfs.py): box root could read anything host root owns in them.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE = 1
_OPEN_TREE_CLOEXEC = os.O_CLOEXEC
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def idmapped_readonly_clone(source: Path, userns_fd: int, target: Path) -> None:
    """Mount at `target` a clone of the mount at `source` (not its submounts), read-only,
    nosuid, nodev, and idmapped through the user namespace `userns_fd`. Needs host root."""
    flags = _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC
    tree_fd = _check(
        _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(source), flags), f"open_tree {source}"
    )
    try:
        attr = _MountAttr(
            MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            0,
            0,
            userns_fd,
        )
        setattr_args = (tree_fd, b"", _AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr))
        _check(_libc.syscall(_SYS_MOUNT_SETATTR, *setattr_args), f"idmap {source}")
        move_args = (tree_fd, b"", _AT_FDCWD, os.fsencode(target), _MOVE_MOUNT_F_EMPTY_PATH)
        _check(_libc.syscall(_SYS_MOVE_MOUNT, *move_args), f"move_mount to {target}")
    finally:
        os.close(tree_fd)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """An overlayfs at `target` (nosuid, nodev): `lower` read-only, writes go to `upper`.
    Paths must hold no comma, colon or backslash (overlay's option syntax)."""
    for path in (lower, upper, work):
        if any(char in str(path) for char in ",:\\"):
            raise ValueError(f"overlay path {path} holds a character overlayfs splits on")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    result = _libc.mount(b"overlay", os.fsencode(target), b"overlay", MS_NOSUID | MS_NODEV, options)
    _check(result, f"mount overlay at {target}")


def detach(target: Path) -> None:
    """umount2(MNT_DETACH): gone from the tree at once, freed when its last user is."""
    _check(_libc.umount2(os.fsencode(target), MNT_DETACH), f"detach {target}")
