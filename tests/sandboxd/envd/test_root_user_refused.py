"""Where the box has no root (the agent is not box root: reduced isolation, or this
harness's plain agent), the SDK's `user="root"` gets a clear error naming why, never a
silent run as the user."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox, SandboxException

from sandboxd.isolation.bwrap import bwrap_works, setpriv_argv
from sandboxd.testing import RunningSandboxd, running_sandboxd

# Box uids of this module's own: never those of another test's sandboxd.
UID_BASE = 480_000 + (os.getpid() % 500) * 100


def test_user_root_is_refused_with_the_reason(sandbox: Sandbox, home: Path) -> None:
    with pytest.raises(SandboxException) as refused:
        sandbox.commands.run("touch ran-as-root", user="root")
    assert "no root" in str(refused.value) and "reduced isolation" in str(refused.value)
    with pytest.raises(SandboxException) as refused_file:
        sandbox.files.write("written-as-root.txt", "x", user="root")
    assert "no root" in str(refused_file.value)
    with pytest.raises(SandboxException):
        sandbox.files.read("anything", user="root")
    with pytest.raises(SandboxException):
        sandbox.files.list(".", user="root")

    assert not (home / "ran-as-root").exists()
    assert not (home / "written-as-root.txt").exists()
    assert sandbox.commands.run("id -u").exit_code == 0  # the user's commands still run


@pytest.fixture(scope="module")
def reduced_sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    ok, why = bwrap_works(setpriv_argv(UID_BASE) if os.geteuid() == 0 else ())
    if not ok:
        pytest.skip(f"no bwrap for reduced boxes here: {why}")
    with running_sandboxd(
        tmp_path_factory.mktemp("reduced-root-user"),
        SANDBOXD_ISOLATION="reduced",
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
    ) as server:
        yield server


def test_a_reduced_sandboxd_refuses_root_saying_why(
    reduced_sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in reduced_sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)
    sandbox = Sandbox.create(timeout=60)
    try:
        with pytest.raises(SandboxException) as refused:
            sandbox.commands.run("id -u > /tmp/ran-as-root", user="root")
        with pytest.raises(SandboxException) as refused_file:
            sandbox.files.read("/etc/hostname", user="root")
        ran = sandbox.files.exists("/tmp/ran-as-root")
    finally:
        sandbox.kill()

    assert "no root" in str(refused.value) and "reduced isolation" in str(refused.value)
    assert "no root" in str(refused_file.value)
    assert not ran
