"""Finding 9, data at rest: sandboxd's data dir as another host user would find it.

The data dir must be 0700 and every file in it 0600 even when sandboxd starts with a
umask of 022 in a dir left 0755, and the store must not hold an envd token in clear (a
copy of the file, a backup, would otherwise open every live box).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandboxd.testing import RunningSandboxd, api_client, running_sandboxd
from tests.security.second_user import run_as_attacker


@pytest.fixture(scope="module")
def loose_sandboxd() -> Iterator[RunningSandboxd]:
    """A sandboxd started with umask 022 in a data dir made 0755 beforehand, holding a
    file an older run left 0644. Its parent is open to every user (as a home dir often
    is), unlike pytest's own temp root, so only the data dir's own mode can stop them."""
    parent = Path(tempfile.mkdtemp(prefix="sandboxd-loose-"))
    parent.chmod(0o755)
    data_dir = parent / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    (data_dir / "team_id").write_text("8c7a5f6e-0000-4000-8000-000000000000\n")
    (data_dir / "team_id").chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        with running_sandboxd(data_dir, SANDBOXD_MAX_SANDBOXES="2") as server:
            os.umask(old_umask)
            yield server
    finally:
        os.umask(old_umask)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def loose_api(loose_sandboxd: RunningSandboxd) -> Iterator[httpx.Client]:
    with api_client(loose_sandboxd) as client:
        yield client


@pytest.fixture
def token_of_a_live_box(loose_api: httpx.Client) -> Iterator[str]:
    """A live box's envd token, as the SDK's create (v2, always secured) gets it."""
    answer = loose_api.post("/v2/sandboxes", json={"templateID": "small", "timeout": 60})
    answer.raise_for_status()
    try:
        yield answer.json()["envdAccessToken"]
    finally:
        loose_api.delete(f"/sandboxes/{answer.json()['sandboxID']}")


def _modes_under(top: Path) -> dict[str, int]:
    """Permission bits of `top` and of every dir and regular file under it (not into
    mount points: a box's disk is the box's, not sandboxd's)."""
    modes = {str(top): stat.S_IMODE(top.stat().st_mode)}
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(root, d))]
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                modes[os.path.join(root, name)] = stat.S_IMODE(info.st_mode)
    return modes


def test_the_data_dir_and_its_files_are_the_owners_alone(
    loose_sandboxd: RunningSandboxd, token_of_a_live_box: str
) -> None:
    data_dir = loose_sandboxd.data_dir
    # The harness's own log of sandboxd's stderr is made by the test, not by sandboxd. The
    # base tree of boxes' /etc and /var (isolation/rootfs.py) is a copy of what every host
    # user may read, modes kept for the boxes; its 0700 dir (checked) closes it to others.
    base_tree = str(data_dir / "rootfs" / "tree")
    modes = {
        path: mode
        for path, mode in _modes_under(data_dir).items()
        if path != str(data_dir / "sandboxd.log")
        and path != base_tree
        and not path.startswith(base_tree + "/")
    }

    assert modes[str(data_dir)] == 0o700
    assert str(data_dir / "sandboxd.sqlite3") in modes
    loose = {
        path: oct(mode)
        for path, mode in modes.items()
        if mode != (0o700 if os.path.isdir(path) else 0o600)
    }
    assert loose == {}


def test_another_user_cannot_list_the_data_dir(
    loose_sandboxd: RunningSandboxd, token_of_a_live_box: str
) -> None:
    attack = f"import os; print(sorted(os.listdir({str(loose_sandboxd.data_dir)!r})))"

    done = run_as_attacker(attack)

    assert done.returncode != 0 and "PermissionError" in done.stderr


def test_the_store_holds_no_token_in_clear(
    loose_sandboxd: RunningSandboxd, token_of_a_live_box: str
) -> None:
    store_files = list(loose_sandboxd.data_dir.glob("sandboxd.sqlite3*"))

    assert store_files
    holding = [p.name for p in store_files if token_of_a_live_box.encode() in p.read_bytes()]
    assert holding == []
