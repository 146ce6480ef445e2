"""The seccomp filter every box runs under, as classic BPF for `bwrap --seccomp FD`.

Default ALLOW, so ordinary programs (compilers, package managers, browsers) keep working;
EPERM for calls a sandbox never needs and that widen the kernel's attack surface: mounts,
modules, kexec, bpf, clocks, keyrings, perf, userfaultfd, handle-based opens and new
namespaces. Capabilities are already dropped, so most of these would fail anyway: the
filter is the second wall, and it also closes what needs no capability (unshare of a
user namespace, perf_event_open, userfaultfd, keyctl). ptrace stays allowed: the PID
namespace limits it to the box's own processes, and debuggers need it.
"""

from __future__ import annotations

import errno
import functools
import os
from typing import Any

from sandboxd.isolation.bwrap import memfd_holding

BLOCKED_SYSCALLS: tuple[str, ...] = (
    "mount", "umount2", "pivot_root", "chroot",
    # The new mount API does what mount(2) does.
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "swapon", "swapoff", "reboot", "acct",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
    "open_by_handle_at", "name_to_handle_at", "unshare", "setns",
    "iopl", "ioperm", "quotactl", "lookup_dcookie", "syslog", "vhangup",
)  # fmt: skip

# clone(2) flags that make a namespace; clone with any of them gets EPERM.
NAMESPACE_CLONE_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
# personality(0xffffffff) only reads the current persona (some runtimes ask); every
# change (e.g. ADDR_NO_RANDOMIZE) gets EPERM.
PERSONALITY_QUERY = 0xFFFFFFFF


def _pyseccomp() -> Any:
    import pyseccomp  # type: ignore[import-untyped]  # no stubs; imported late: needs libseccomp

    return pyseccomp


def seccomp_available() -> tuple[bool, str]:
    """Whether the filter can be built here (pyseccomp and libseccomp). (ok, reason)."""
    try:
        seccomp_bpf()
    except (ImportError, OSError, RuntimeError) as exc:
        return False, f"seccomp filter unavailable: {exc}"
    return True, "seccomp filter built with libseccomp"


def build_filter() -> Any:
    """A `pyseccomp.SyscallFilter` for the native architecture (other ABIs are killed:
    libseccomp's default bad-arch action, which also closes the i386/x32 back doors)."""
    sc = _pyseccomp()
    deny = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(sc.ALLOW)
    for name in BLOCKED_SYSCALLS:
        if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:  # unknown on this arch: skip
            flt.add_rule(deny, name)
    for flag in NAMESPACE_CLONE_FLAGS.values():
        # One rule per flag: libseccomp ORs rules, but allows one comparison per argument.
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, out of seccomp's sight. ENOSYS makes glibc fall
    # back to clone(2), whose flags the rules above can see (what Docker and Flatpak do).
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    flt.add_rule(deny, "personality", sc.Arg(0, sc.NE, PERSONALITY_QUERY))
    return flt


@functools.cache
def seccomp_bpf() -> bytes:
    """The filter as a classic BPF program (built once per process)."""
    fd = os.memfd_create("sandboxd-seccomp-build", os.MFD_CLOEXEC)
    try:
        with os.fdopen(fd, "wb", closefd=False) as out:
            build_filter().export_bpf(out)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def seccomp_fd() -> int:
    """A fresh memfd holding the BPF program, positioned at 0, for `bwrap --seccomp FD`.
    The caller passes it with `pass_fds` and closes it after the spawn."""
    return memfd_holding("sandboxd-seccomp", seccomp_bpf())
