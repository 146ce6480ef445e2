"""With reduced isolation there is no root in a box: `sudo` says so plainly (exit 1),
instead of "command not found"."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from e2b import CommandExitException, Sandbox

from sandboxd.isolation.bwrap import bwrap_works, setpriv_argv
from sandboxd.testing import RunningSandboxd, running_sandboxd

# Box uids of this module's own: never those of another test's sandboxd.
UID_BASE = 460_000 + (os.getpid() % 500) * 100


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    ok, why = bwrap_works(setpriv_argv(UID_BASE) if os.geteuid() == 0 else ())
    if not ok:
        pytest.skip(f"reduced boxes run without bwrap here, with no sudo client: {why}")
    with running_sandboxd(
        tmp_path_factory.mktemp("reduced-sudo"),
        SANDBOXD_ISOLATION="reduced",
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
    ) as server:
        yield server


def test_sudo_in_a_reduced_box_says_there_is_no_root(
    sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)
    sandbox = Sandbox.create(timeout=60)
    try:
        with pytest.raises(CommandExitException) as failed:
            sandbox.commands.run("sudo id -u")
    finally:
        sandbox.kill()

    assert failed.value.exit_code == 1
    assert "this sandbox has no root" in failed.value.stderr
    assert "reduced isolation" in failed.value.stderr
