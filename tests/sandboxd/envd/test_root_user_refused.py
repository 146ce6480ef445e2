"""Where the box has no root (the agent is not box root: reduced isolation, or this
harness's plain agent), the SDK's `user="root"` gets a clear error naming why, never a
silent run as the user."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2b import Sandbox, SandboxException


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
