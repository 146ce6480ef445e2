"""The seccomp filter as BPF (its effect inside a box is in test_full_isolation)."""

from __future__ import annotations

import os

import pytest

from sandboxd.isolation.seccomp import (
    AF_VSOCK,
    ARG_RULES,
    BLOCKED_SYSCALLS,
    DENIED,
    seccomp_available,
    seccomp_bpf,
    seccomp_fd,
)


@pytest.fixture(autouse=True)
def _needs_libseccomp() -> None:
    ok, why = seccomp_available()
    if not ok:
        pytest.skip(why)


def test_the_program_is_classic_bpf() -> None:
    program = seccomp_bpf()

    assert len(program) % 8 == 0  # struct sock_filter is 8 bytes
    assert 8 * len(BLOCKED_SYSCALLS) <= len(program) < 8 * 4096


def test_the_fd_holds_the_program_from_its_start() -> None:
    fd = seccomp_fd()
    try:
        assert os.read(fd, 1 << 16) == seccomp_bpf()
    finally:
        os.close(fd)


def test_the_blocklist_covers_what_the_brief_names() -> None:
    for name in ("mount", "unshare", "setns", "bpf", "keyctl", "userfaultfd", "kexec_load"):
        assert name in BLOCKED_SYSCALLS
    assert "ptrace" not in BLOCKED_SYSCALLS


def test_every_entry_says_why_and_none_is_listed_twice() -> None:
    assert all(len(group.reason) > 20 for group in DENIED)
    assert all(len(rule.reason) > 20 for rule in ARG_RULES)
    assert len(BLOCKED_SYSCALLS) == len(set(BLOCKED_SYSCALLS))


def test_io_uring_and_vsock_are_in_the_table() -> None:
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert name in BLOCKED_SYSCALLS
    assert any(rule.syscall == "socket" and rule.value == AF_VSOCK for rule in ARG_RULES)
