"""The concurrent-sandbox limit answers 429 with E2B's message shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandboxd.testing import RunningSandboxd, running_sandboxd


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    with running_sandboxd(tmp_path_factory.mktemp("limited"), SANDBOXD_MAX_SANDBOXES="1") as s:
        yield s


def test_past_the_limit_create_answers_429(api: httpx.Client) -> None:
    first = api.post("/sandboxes", json={"templateID": "base"})
    assert first.status_code == 201
    try:
        second = api.post("/sandboxes", json={"templateID": "base"})
        assert second.status_code == 429
        assert second.json()["code"] == 429
        assert "maximum number of concurrent" in second.json()["message"]
    finally:
        api.delete(f"/sandboxes/{first.json()['sandboxID']}")
    third = api.post("/sandboxes", json={"templateID": "base"})
    assert third.status_code == 201
    api.delete(f"/sandboxes/{third.json()['sandboxID']}")
