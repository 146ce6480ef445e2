"""Network namespaces that host root owns: made for a box, and entered to reach into it.

A box's network namespace is made here by sandboxd (root, the host's user namespace), not
by bwrap inside the box's user namespace: root inside the box (its own user namespace) then
has no CAP_NET_ADMIN over it, so it can change no address, route or rule of it
(docs/SECURITY.md, "Network"). The namespace lives as long as an fd to it (or a process in
it) does; nothing is mounted, so a crash leaves nothing behind.

`setns` moves only the calling thread, so each switch runs in a thread of its own that
switches back before it ends (Python 3.11's `os` has neither `unshare` nor `setns`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH14x"  # struct ifreq: the name, then ifr_flags (the rest of the union unused)
# ioctl on a namespace fd (linux/nsfs.h): an fd of the user namespace that owns it.
NS_GET_USERNS = 0xB701

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _in_own_thread(work: Callable[[], T]) -> T:
    """`work()` run in a new thread (which may switch its namespace), its result or error."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="sandboxd-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _inside(netns_fd: int, work: Callable[[], T]) -> T:
    """`work()` run by a thread that is inside `netns_fd` while it runs. If the thread
    cannot switch back, it ends anyway: no other code runs on it."""

    def switched() -> T:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(netns_fd, CLONE_NEWNET), "setns into the box's network")
            try:
                return work()
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back to the host's network")
        finally:
            os.close(own)

    return _in_own_thread(switched)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def new_netns() -> int:
    """A new network namespace owned by the caller's (host) user namespace, with its
    loopback up and nothing else: an fd to it (close-on-exec). Needs root."""

    def make() -> int:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare a network namespace")
            try:
                _loopback_up()
                return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back to the host's network")
        finally:
            os.close(own)

    return _in_own_thread(make)


def connect_inside(netns_fd: int, port: int, timeout_s: float) -> socket.socket:
    """A TCP socket connected to 127.0.0.1:`port` inside the namespace (blocking mode;
    the socket stays in that namespace after the thread leaves it). ConnectionRefusedError
    when nothing listens there."""

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)

    return _inside(netns_fd, connect)


def owner_userns_inode(netns_fd: int) -> int:
    """The inode of the user namespace owning the namespace (compare with
    `os.stat("/proc/self/ns/user").st_ino`)."""
    owner = fcntl.ioctl(netns_fd, NS_GET_USERNS)
    try:
        return os.fstat(owner).st_ino
    finally:
        os.close(owner)


def netns_supported() -> tuple[bool, str]:
    """Whether sandboxd can make network namespaces here; returns (ok, reason)."""
    try:
        os.close(new_netns())
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EINVAL, errno.ENOSYS):
            return False, f"cannot make a network namespace: {exc.strerror}"
        raise
    return True, "network namespaces work"
