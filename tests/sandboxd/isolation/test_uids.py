"""Host uid allocation."""

from __future__ import annotations

import pytest

from sandboxd.isolation.uids import HostUidPool


def test_uids_are_unique_per_live_box_and_reused_after_release() -> None:
    pool = HostUidPool(base=200_000, count=2)
    first, second = pool.allocate(), pool.allocate()

    assert (first, second) == (200_000, 200_001)
    with pytest.raises(RuntimeError, match="in use"):
        pool.allocate()
    pool.release(first)
    assert pool.allocate() == first


def test_privileged_uids_are_refused() -> None:
    with pytest.raises(ValueError):
        HostUidPool(base=0)
