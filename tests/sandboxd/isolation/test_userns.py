"""A box's user namespace: host root maps box ids 0..65535 to the box's host range, and the
holder process that made it is gone once the fd is handed back."""

from __future__ import annotations

import asyncio
import os

import pytest

from sandboxd.isolation.userns import BOX_ID_COUNT, id_map, new_box_userns
from tests.sandboxd.isolation.helpers import FULL_TEST_ID_BASE, FULL_TEST_RANGES

# The last range of this test process's own: no box of the isolation tests uses it.
HOST_BASE = FULL_TEST_ID_BASE + (FULL_TEST_RANGES - 1) * BOX_ID_COUNT


def test_the_map_is_box_root_at_the_range_start() -> None:
    assert id_map(1_000_000) == "0 1000000 65536\n"


def test_a_range_reaching_root_or_past_the_last_uid_is_refused() -> None:
    with pytest.raises(ValueError):
        asyncio.run(new_box_userns(0))
    with pytest.raises(ValueError):
        asyncio.run(new_box_userns(2**32 - 1000))


@pytest.mark.skipif(os.geteuid() != 0, reason="writing another namespace's map needs root")
def test_the_namespace_maps_the_whole_range_and_its_holder_is_reaped() -> None:
    children_before = _children()
    userns = asyncio.run(new_box_userns(HOST_BASE))
    try:
        owner = os.stat(f"/proc/self/fd/{userns.fd}")  # an nsfs inode
        assert os.readlink(f"/proc/self/fd/{userns.fd}").startswith("user:[")
        assert owner.st_ino != os.stat("/proc/self/ns/user").st_ino
    finally:
        userns.close()
    userns.close()  # idempotent
    assert userns.fd == -1
    assert _children() == children_before  # no holder left running or unreaped


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.add(int(name))
    return found
