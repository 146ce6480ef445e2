"""A real sandboxd per test module, on free ports, with fast sampling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sandboxd.running_sandboxd import RunningSandboxd, api_client, running_sandboxd


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    data_dir: Path = tmp_path_factory.mktemp("sandboxd")
    with running_sandboxd(
        data_dir, SANDBOXD_SAMPLE_INTERVAL_S="0.5", SANDBOXD_MAX_SANDBOXES="6"
    ) as server:
        yield server


@pytest.fixture
def api(sandboxd: RunningSandboxd) -> Iterator[httpx.Client]:
    """An HTTP client on sandboxd's API, with its key."""
    with api_client(sandboxd) as client:
        yield client
