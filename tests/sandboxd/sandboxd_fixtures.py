"""Fixtures for tests that need a real sandboxd to act on, shared by the packages' conftests:
a sandboxd per test module (a sample every second), its API, sandboxes made for one test, and
the official SDK pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from e2b import Sandbox

from sandboxd.testing import RunningSandboxd, api_client, running_sandboxd


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    # No skip: without root sandboxd runs with reduced isolation, which says so.
    data_dir: Path = tmp_path_factory.mktemp("sandboxd")
    with running_sandboxd(
        data_dir, SANDBOXD_SAMPLE_INTERVAL_S="1", SANDBOXD_MAX_SANDBOXES="8"
    ) as server:
        yield server


@pytest.fixture
def api(sandboxd: RunningSandboxd) -> Iterator[httpx.Client]:
    """sandboxd's API, straight, to make and end sandboxes."""
    with api_client(sandboxd) as client:
        yield client


@pytest.fixture
def new_sandbox(api: httpx.Client) -> Iterator[Callable[..., str]]:
    """Creates sandboxes (`base` for 120 s unless told); kills what is left after the test."""
    made: list[str] = []

    def create(template: str = "base", timeout_s: int = 120) -> str:
        answer = api.post("/sandboxes", json={"templateID": template, "timeout": timeout_s})
        answer.raise_for_status()
        sandbox_id: str = answer.json()["sandboxID"]
        made.append(sandbox_id)
        return sandbox_id

    yield create
    for sandbox_id in made:
        api.delete(f"/sandboxes/{sandbox_id}")  # 404 when the test ended it already


@pytest.fixture
def sdk_env(sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the SDK at sandboxd the way the README says (never E2B_DEBUG)."""
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    for name, value in sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def small_sandbox(sdk_env: None) -> Iterator[Sandbox]:
    """A `small` (128 MiB) sandbox made through the SDK for one test."""
    sandbox = Sandbox.create(template="small", timeout=120)
    yield sandbox
    with contextlib.suppress(Exception):  # already gone
        sandbox.kill()
