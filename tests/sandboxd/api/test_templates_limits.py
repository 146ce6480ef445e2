"""A build's layer is cut off at SANDBOXD_MAX_LAYER_MB (compressed), failing the build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2b import BuildException, Template

from sandboxd.testing import running_sandboxd


def test_a_layer_past_the_limit_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandboxd(tmp_path, SANDBOXD_MAX_LAYER_MB="1") as server:
        monkeypatch.delenv("E2B_DEBUG", raising=False)
        for name, value in server.sdk_env().items():
            monkeypatch.setenv(name, value)
        small = Template().from_template("base").run_cmd("head -c 100K /dev/urandom > ok")
        big = Template().from_template("base").run_cmd("head -c 3M /dev/urandom > blob")

        Template.build(small, "layer-small")
        with pytest.raises(BuildException, match="over the layer limit of 1 MiB"):
            Template.build(big, "layer-big")

        layers = server.data_dir / "templates" / "layers"
        leftovers = [p.name for p in layers.iterdir() if p.name.startswith(".")]
        sizes = [os.path.getsize(p) for p in layers.glob("*.tar")]

    assert leftovers == []  # the cut-off copy is gone
    assert sizes and max(sizes) <= 2**20
