"""Choosing the isolation level, with the reasons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxd.isolation import reduced
from sandboxd.isolation.choose import choose_isolation, full_blockers
from sandboxd.isolation.full import FullIsolation
from sandboxd.isolation.reduced import ReducedIsolation
from tests.sandboxd.isolation.helpers import TEST_UID_BASE, full_skip_reason


def test_forced_reduced_says_so(data_dir: Path, cgroup_parent: str) -> None:
    iso = choose_isolation(data_dir, cgroup_parent, TEST_UID_BASE, force_reduced=True)

    assert isinstance(iso, ReducedIsolation)
    assert iso.limitations[0] == "Reduced isolation because: forced by a setting"
    iso.close()


def test_full_when_everything_works(data_dir: Path, cgroup_parent: str, mounts_dir: Path) -> None:
    reason = full_skip_reason(cgroup_parent)
    if reason:
        pytest.skip(reason)

    assert full_blockers(data_dir, cgroup_parent, TEST_UID_BASE) == []
    iso = choose_isolation(data_dir, cgroup_parent, TEST_UID_BASE, force_reduced=False)
    assert isinstance(iso, FullIsolation) and iso.level == "full"
    iso.close()
    assert list((data_dir / "boxes").iterdir()) == []  # the probes cleaned up


def test_without_root_it_is_reduced_with_the_reason(
    data_dir: Path, cgroup_parent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandboxd.isolation.choose.os.geteuid", lambda: 1000)
    # As a plain user would: without capabilities (the test runs as root, which has them).
    monkeypatch.setattr(reduced, "capability_blocker", lambda: None)
    iso = choose_isolation(data_dir, cgroup_parent, TEST_UID_BASE, force_reduced=False)

    assert isinstance(iso, ReducedIsolation)
    assert iso.limitations[0] == "Reduced isolation because: sandboxd is not running as root"
    iso.close()


def test_a_private_data_dir_does_not_block_full(
    tmp_path: Path, cgroup_parent: str, mounts_dir: Path
) -> None:
    if full_skip_reason(cgroup_parent):
        pytest.skip("full isolation does not work here anyway")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    os.chmod(closed, 0o700)  # as sandboxd's own data dir is

    assert full_blockers(closed / "data", cgroup_parent, TEST_UID_BASE) == []
