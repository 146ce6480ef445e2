"""The seccomp filter every box runs under, as classic BPF for `bwrap --seccomp FD`.

Default ALLOW, so ordinary programs (compilers, package managers, browsers) keep working;
the calls a sandbox never needs and that widen the kernel's attack surface are denied,
each group with its reason, in DENIED and ARG_RULES below: that table is the whole list.
It covers what Docker's default profile (moby profiles/seccomp/default.json) and Podman's
(containers/common seccomp.json) refuse a container without extra capabilities, except
what a box's own work needs: ptrace and process_vm_readv/writev stay (debuggers; the PID
namespace limits them to the box's own processes), and so does membarrier, which Podman
denies but the .NET runtime and userspace RCU need. Capabilities are already dropped, so
many of these would fail anyway: the filter is the second wall, and it alone closes what
needs no capability (user namespaces, perf_event_open, userfaultfd, keyctl, io_uring).
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass
from typing import Any, Literal

from sandboxd.isolation.bwrap import memfd_holding


@dataclass(frozen=True)
class Denied:
    """Syscalls refused outright, and why (names unknown on this architecture are
    skipped: libseccomp's bad-arch default already kills other ABIs)."""

    reason: str
    syscalls: tuple[str, ...]
    errno: int = errno.EPERM


@dataclass(frozen=True)
class ArgRule:
    """A syscall refused when one argument matches: `arg op value` (for masked_eq,
    `arg & value == value`, i.e. the flag is set)."""

    reason: str
    syscall: str
    arg: int
    op: Literal["eq", "ne", "masked_eq"]
    value: int
    errno: int = errno.EPERM


# clone(2) flags that make a namespace.
NAMESPACE_CLONE_FLAGS: dict[str, int] = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
# personality(0xffffffff) only reads the current persona (some runtimes ask).
PERSONALITY_QUERY = 0xFFFFFFFF
AF_VSOCK = 40

DENIED: tuple[Denied, ...] = (
    Denied(
        "Mounts and the root: a box's filesystem is exactly what bwrap built; the new "
        "mount API (open_tree ... mount_setattr) does what mount(2) does.",
        ("mount", "umount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
         "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"),
    ),
    Denied(
        "New namespaces: each one (a user namespace above all) opens kernel code that "
        "unprivileged users otherwise never reach. See also the clone flags below.",
        ("unshare", "setns"),
    ),
    Denied(
        "Kernel code: modules, kexec and eBPF programs run in the kernel itself.",
        ("init_module", "finit_module", "delete_module", "create_module", "query_module",
         "get_kernel_syms", "kexec_load", "kexec_file_load", "bpf"),
    ),
    Denied(
        "Attack surface with no use in a box: io_uring is a second syscall interface "
        "whose operations seccomp cannot see, and a long run of kernel exploits; "
        "perf_event_open, userfaultfd and fanotify likewise. ENOSYS for io_uring, so "
        "libraries (libuv, tokio) take it for an old kernel and fall back to plain I/O.",
        ("io_uring_setup", "io_uring_enter", "io_uring_register"),
        errno.ENOSYS,
    ),
    Denied(
        "Profiling and fault-handling interfaces that served kernel exploits.",
        ("perf_event_open", "userfaultfd", "fanotify_init"),
    ),
    Denied(
        "vmsplice maps user pages into pipes, behind old root exploits; Podman denies it "
        "and nothing a box runs needs it (splice and tee stay).",
        ("vmsplice",),
    ),
    Denied(
        "Kernel keyrings are not namespaced: keys would be shared with the host user.",
        ("keyctl", "add_key", "request_key"),
    ),
    Denied(
        "The machine's clocks, shared with the host and every other box.",
        ("settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex"),
    ),
    Denied(
        "Host administration: power, swap, accounting, quotas, NFS, the kernel log, "
        "terminals, host names (the box's name is set at launch).",
        ("reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "nfsservctl",
         "syslog", "vhangup", "sethostname", "setdomainname"),
    ),
    Denied(
        "Obsolete calls kept only for old binaries, each a bit of unmaintained kernel.",
        ("uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old", "lookup_dcookie",
         "bdflush", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"),
    ),
    Denied(
        "Files by handle: bypasses the paths bwrap's mounts are made of.",
        ("open_by_handle_at", "name_to_handle_at"),
    ),
    Denied("Raw I/O ports: direct access to the host's hardware.", ("iopl", "ioperm")),
    Denied(
        "Reaching into other processes beyond ptrace's own checks: comparing kernel "
        "objects (kcmp), taking their fds, advising or moving their memory.",
        ("kcmp", "pidfd_getfd", "process_madvise", "move_pages", "migrate_pages"),
    ),
    Denied(
        "NUMA memory policy: placement across the host's memory nodes is the host's.",
        ("mbind", "set_mempolicy", "set_mempolicy_home_node", "get_mempolicy"),
    ),
    Denied(
        "clone3 passes its flags in memory, out of seccomp's sight. ENOSYS makes glibc "
        "fall back to clone(2), whose flags the rules below can see (as Docker does).",
        ("clone3",),
        errno.ENOSYS,
    ),
)  # fmt: skip

ARG_RULES: tuple[ArgRule, ...] = (
    *(
        ArgRule(f"clone with {name}: a new namespace (see unshare).", "clone", 0, "masked_eq", flag)
        for name, flag in NAMESPACE_CLONE_FLAGS.items()
    ),
    ArgRule(
        "Personality changes (e.g. ADDR_NO_RANDOMIZE turns off address randomisation); "
        "reading the current one stays allowed.",
        "personality",
        0,
        "ne",
        PERSONALITY_QUERY,
    ),
    ArgRule(
        "AF_VSOCK: host-guest sockets, no use on a box with no network, and the home of "
        "recent use-after-free root exploits.",
        "socket",
        0,
        "eq",
        AF_VSOCK,
    ),
)

# Every syscall denied outright, for tests and docs.
BLOCKED_SYSCALLS: tuple[str, ...] = tuple(name for group in DENIED for name in group.syscalls)


def _pyseccomp() -> Any:
    import pyseccomp  # imported late: needs libseccomp

    return pyseccomp


def seccomp_available() -> tuple[bool, str]:
    """Whether the filter can be built here (pyseccomp and libseccomp). (ok, reason)."""
    try:
        seccomp_bpf()
    except (ImportError, OSError, RuntimeError) as exc:
        return False, f"seccomp filter unavailable: {exc}"
    return True, "seccomp filter built with libseccomp"


def build_filter() -> Any:
    """A `pyseccomp.SyscallFilter` for the native architecture from DENIED and ARG_RULES
    (other ABIs are killed: libseccomp's default bad-arch action, which also closes the
    i386/x32 back doors)."""
    sc = _pyseccomp()
    flt = sc.SyscallFilter(sc.ALLOW)
    for group in DENIED:
        for name in group.syscalls:
            if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:  # unknown on this arch: skip
                flt.add_rule(sc.ERRNO(group.errno), name)
    for rule in ARG_RULES:
        # One rule per comparison: libseccomp ORs rules, but allows one per argument.
        if rule.op == "masked_eq":
            compare = sc.Arg(rule.arg, sc.MASKED_EQ, rule.value, rule.value)
        else:
            compare = sc.Arg(rule.arg, sc.EQ if rule.op == "eq" else sc.NE, rule.value)
        flt.add_rule(sc.ERRNO(rule.errno), rule.syscall, compare)
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
