"""What the tests of real OOM kills share: whether the kernel can OOM-kill inside a sandbox
here (sandboxd's full mode: root and cgroups, hybrid or v2), a marker that skips otherwise, and
the memory bomb that gets killed."""

from __future__ import annotations

import os

import pytest

from sandboxd.isolation.cgroups import detect_cgroup_layout

# Grows to ~400 MB in 1 MB steps: far past the `small` template's 128 MiB.
MEMORY_BOMB = "python3 -c 'a = []\nfor _ in range(400): a.append(bytearray(10**6))'"


def kernel_oom_skip_reason() -> str | None:
    """Why the kernel cannot OOM-kill inside a sandbox here, or None when it can."""
    if os.geteuid() != 0 or detect_cgroup_layout().kind == "none":
        return "OOM kills from the kernel need root and cgroups (sandboxd's full mode)"
    return None


needs_kernel_oom = pytest.mark.skipif(
    kernel_oom_skip_reason() is not None, reason=kernel_oom_skip_reason() or ""
)
