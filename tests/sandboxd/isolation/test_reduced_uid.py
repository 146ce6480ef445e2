"""Who reduced boxes run as: the start-up checks that refuse root boxes, and the kill of
every process of a box's uid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxd.isolation.bwrap import setpriv_argv
from sandboxd.isolation.choose import choose_isolation
from sandboxd.isolation.reduced import UnprivilegedBoxesUnavailable, reduced_blockers
from sandboxd.isolation.reduced_uid import (
    capability_blocker,
    has_live_processes,
    kill_uid,
    uid_switch_blocker,
    uids_with_processes,
)
from sandboxd.isolation.uids import HostUidPool, accounts_in_range
from sandboxd.testing import SOURCE_ROOT
from tests.sandboxd.isolation.helpers import TEST_UID_BASE, Loop

# Past the uids test_reduced's boxes take.
UID = TEST_UID_BASE + 99
STATUS = "Name:\tsandboxd\nCapInh:\t{inh}\nCapPrm:\t{prm}\nCapEff:\t{eff}\nCapAmb:\t{amb}\n"
NONE = "0000000000000000"


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch uid")


def test_a_plain_user_without_capabilities_may_run_boxes_as_itself(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(STATUS.format(inh=NONE, prm=NONE, eff=NONE, amb=NONE))

    assert capability_blocker(str(status)) is None


def test_a_user_holding_capabilities_may_not(tmp_path: Path) -> None:
    status = tmp_path / "status"
    # CAP_SYS_RESOURCE (bit 24) as an ambient capability: boxes would inherit it, and it
    # lifts RLIMIT_NPROC.
    sys_resource = "0000000001000000"
    status.write_text(STATUS.format(inh=NONE, prm=sys_resource, eff=NONE, amb=sys_resource))

    blocker = capability_blocker(str(status))

    assert blocker is not None and "CapAmb=0000000001000000" in blocker
    assert "CapPrm=0000000001000000" in blocker and "CapInh" not in blocker


def test_a_uid_range_holding_an_account_is_refused() -> None:
    needs_root()

    assert "user nobody (65534)" in accounts_in_range(65_000, 1_000)
    assert accounts_in_range(TEST_UID_BASE, 100) == []
    blockers = reduced_blockers(65_000, 1_000)
    assert len(blockers) == 1 and "SANDBOXD_HOST_UID_BASE" in blockers[0]
    assert "user nobody (65534)" in blockers[0]


def test_root_can_switch_to_a_box_uid_here() -> None:
    needs_root()

    assert uid_switch_blocker(UID) is None
    assert reduced_blockers(TEST_UID_BASE, 100) == []


def test_root_in_a_namespace_without_the_uid_cannot() -> None:
    needs_root()
    code = (
        "from sandboxd.isolation.reduced_uid import uid_switch_blocker; "
        f"print(uid_switch_blocker({UID}))"
    )
    done = subprocess.run(
        ["/usr/bin/unshare", "--user", "--map-root-user", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, check=False, cwd=SOURCE_ROOT,
    )  # fmt: skip
    if "unshare failed" in done.stderr:
        pytest.skip("cannot make a user namespace here")

    assert done.stdout.startswith(f"cannot switch to host uid {UID}: "), done.stderr
    assert "setresuid" in done.stdout


def test_busy_uids_are_skipped() -> None:
    pool = HostUidPool(base=200_000, count=3)

    assert pool.allocate(busy={200_000, 200_001}) == 200_002
    with pytest.raises(RuntimeError, match="in use"):
        pool.allocate(busy={200_000, 200_001})


def test_kill_uid_ends_every_process_of_the_uid(loop: Loop) -> None:
    needs_root()
    sleepers = [
        subprocess.Popen([*setpriv_argv(UID), "/usr/bin/setsid", "/bin/sleep", "60"])
        for _ in range(3)
    ]
    try:
        assert UID in uids_with_processes() and has_live_processes(UID)
        loop.run(kill_uid(UID))

        assert not has_live_processes(UID)
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def test_kill_uid_refuses_privileged_uids(loop: Loop) -> None:
    with pytest.raises(ValueError, match="refusing"):
        loop.run(kill_uid(0))


def test_no_level_starts_with_a_uid_range_holding_an_account(data_dir: Path) -> None:
    needs_root()
    for forced in (False, True):
        with pytest.raises(UnprivilegedBoxesUnavailable, match=r"user nobody \(65534\)"):
            choose_isolation(data_dir, "sbx-never-made", 65_000, force_reduced=forced)
