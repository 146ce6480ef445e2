"""Builds under reduced isolation too: a box's home is wherever the box has it (`$HOME`),
so a layer is taken from and put back into that home."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox, Template

from sandboxd.testing import running_sandboxd


@pytest.fixture
def reduced_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_sandboxd(data_dir, SANDBOXD_ISOLATION="reduced") as server:
        monkeypatch.delenv("E2B_DEBUG", raising=False)
        for name, value in server.sdk_env().items():
            monkeypatch.setenv(name, value)
        yield


def test_a_build_and_its_sandbox_under_reduced_isolation(reduced_env: None, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello\n")
    template = (
        Template(file_context_path=str(context))
        .from_template("base")
        .copy("hello.txt", "copied/")  # relative: under the WORKDIR, the home by default
        .set_workdir("work")
        .run_cmd("pwd > where.txt")
    )

    Template.build(template, "reduced-build")

    sandbox = Sandbox.create("reduced-build", timeout=60)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(sandbox.kill)
        home = sandbox.commands.run("echo $HOME").stdout.strip()
        assert sandbox.files.read(os.path.join(home, "copied", "hello.txt")) == "hello\n"
        assert sandbox.files.read(os.path.join(home, "work", "where.txt")).strip() == (
            os.path.join(home, "work")
        )
