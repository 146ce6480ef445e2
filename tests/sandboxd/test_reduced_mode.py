"""sandboxd with reduced isolation (forced by its setting) still runs sandboxes, and says so."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from e2b import Sandbox

from sandboxd.testing import RunningSandboxd, running_sandboxd

# Box uids of this module's own: never those of another test's sandboxd.
UID_BASE = 450_000 + (os.getpid() % 500) * 100


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    with running_sandboxd(
        tmp_path_factory.mktemp("reduced"),
        SANDBOXD_ISOLATION="reduced",
        SANDBOXD_SAMPLE_INTERVAL_S="1",
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
    ) as server:
        yield server


@pytest.fixture
def sandbox(sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    for name, value in sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)
    created = Sandbox.create(timeout=60)
    yield created
    created.kill()


def test_health_and_details_say_the_isolation_is_reduced(
    api: httpx.Client, sandbox: Sandbox
) -> None:
    assert "isolation: reduced" in httpx.get(f"{api.base_url}/health").text
    detail = api.get(f"/sandboxes/{sandbox.sandbox_id}").json()
    assert detail["isolation"].startswith("reduced")
    assert "forced by a setting" in detail["isolation"]
    own_uids = "Each box runs as an unprivileged host uid of its own"
    plain_user = "Boxes run as the user that runs sandboxd (never root)"
    assert (own_uids if os.geteuid() == 0 else plain_user) in detail["isolation"]


def test_commands_files_pause_and_metrics_still_work(api: httpx.Client, sandbox: Sandbox) -> None:
    assert sandbox.commands.run("echo reduced").stdout.strip() == "reduced"
    sandbox.files.write("/home/user/r.txt", "ok")
    assert sandbox.files.read("/home/user/r.txt") == "ok"
    metrics = f"/sandboxes/{sandbox.sandbox_id}/metrics"
    deadline = time.monotonic() + 10
    while not api.get(metrics).json() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.get(metrics).json()[0]["memUsed"] > 0
    assert sandbox.pause() is True
    assert Sandbox.connect(sandbox.sandbox_id).commands.run("echo back").stdout.strip() == "back"
