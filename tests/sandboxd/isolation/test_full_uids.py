"""Full isolation hands a box only a host id range no process runs in: a uid whose old
processes survived (stuck, or another sandboxd's) would let the new box signal them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from sandboxd.isolation.bwrap import HELPER_ENV, setpriv_argv
from sandboxd.isolation.full import FullIsolation
from sandboxd.isolation.polling import wait_until
from sandboxd.isolation.reduced_uid import has_live_processes
from sandboxd.isolation.uids import HostIdRangePool, HostUidPool
from sandboxd.isolation.userns import BOX_ID_COUNT
from tests.sandboxd.isolation.helpers import FULL_TEST_ID_BASE, Launch, Loop

# How long the stand-in for a surviving process may live: far past the test, and bounded.
SURVIVOR_LIFETIME_S = 120
STEP_TIMEOUT_S = 10.0


def test_the_pool_skips_busy_uids() -> None:
    pool = HostUidPool(base=200_000, count=3)

    assert pool.allocate(busy={200_000, 200_001}) == 200_002
    with pytest.raises(RuntimeError, match="in use"):
        pool.allocate(busy={200_000, 200_001})
    assert pool.allocate() == 200_000  # not busy any more


@pytest.fixture
def survivor(loop: Loop) -> Iterator[int]:
    """A process left running as a uid of the first range the full isolation fixture would
    hand out (its user's); yields that uid, and kills the process after the test."""
    uid = FULL_TEST_ID_BASE + 1000
    process = subprocess.Popen(
        [*setpriv_argv(uid), "/bin/sleep", str(SURVIVOR_LIFETIME_S)],
        stdin=subprocess.DEVNULL,
        env=HELPER_ENV,
    )
    try:
        loop.run(wait_until(lambda: has_live_processes(uid), STEP_TIMEOUT_S, "the survivor"))
        yield uid
    finally:
        process.kill()
        process.wait(STEP_TIMEOUT_S)


def test_a_uid_with_surviving_processes_is_not_handed_out(
    full_iso: FullIsolation, launch_full: Launch, survivor: int
) -> None:
    box = launch_full()

    assert not box.host_uid <= survivor < box.host_uid + BOX_ID_COUNT
    assert box.host_uid >= FULL_TEST_ID_BASE + BOX_ID_COUNT


def test_the_range_pool_skips_ranges_holding_a_busy_uid() -> None:
    pool = HostIdRangePool(base=1_000_000, size=BOX_ID_COUNT, count=2)

    assert pool.allocate(busy={1_000_000 + 1000}) == 1_000_000 + BOX_ID_COUNT
    with pytest.raises(RuntimeError, match="in use"):
        pool.allocate(busy={1_000_000 + 1000})
    assert pool.allocate() == 1_000_000  # not busy any more
    pool.release(1_000_000)
    assert pool.allocate(busy={999_999, 2_000_000}) == 1_000_000  # outside every range
