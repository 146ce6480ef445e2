"""SANDBOXD_BOX_INTERNET=0 keeps every box off the network, whatever its create asks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import Sandbox

from sandboxd.testing import RunningSandboxd, running_sandboxd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="full isolation needs root")


@pytest.fixture(scope="module")
def offline_sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    data_dir: Path = tmp_path_factory.mktemp("sandboxd-offline")
    with running_sandboxd(data_dir, SANDBOXD_BOX_INTERNET="0") as server:
        yield server


def test_no_box_gets_a_route_and_health_says_so(
    offline_sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    for name, value in offline_sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)
    box = Sandbox.create(template="base", timeout=60, allow_internet_access=True)
    try:
        routes = box.commands.run("cat /proc/net/route", timeout=10).stdout.splitlines()
        assert routes[1:] == []  # the header only
    finally:
        box.kill()
    health = httpx.get(f"{offline_sandboxd.api_url}/health", timeout=10).text
    assert "No network: boxes have only their own loopback" in health
