"""Fixtures for tests that need a real sandboxd to act on, shared by the packages' conftests:
a sandboxd per test module (a sample every second), its API, and sandboxes made for one test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.sandboxd.running_sandboxd import RunningSandboxd, api_client, running_sandboxd


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
