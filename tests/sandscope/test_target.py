"""`sandscope.target`: which API a command talks to, and what it says when there is none.

A local sandboxd is stood in for by a data directory (endpoints file, key, team ID) and a
real HTTP server on 127.0.0.1 answering its /health; `test_find_the_api.py` finds real ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from sandscope.local_sandboxd import LocalSandboxd
from sandscope.settings import CLOUD_API_URL, Settings, load_settings
from sandscope.target import (
    SandboxdToStart,
    Target,
    TargetError,
    TargetSource,
    find_target,
    local_target,
    require_target,
)
from tests.sandscope.local_api import ScriptedAPI, scripted_api

E2B_KEY = "e2b_00112233445566778899aabbccddeeff00112233"
SANDBOXD_KEY = "e2b_99887766554433221100ffeeddccbbaa99887766"
TEAM_ID = "6a8a2b1c-0d3e-4f5a-9b6c-7d8e9f0a1b2c"
ENVD_URL = "http://127.0.0.1:49999"


@pytest.fixture
def sandboxd_api() -> Iterator[ScriptedAPI]:
    """A server answering /health as sandboxd does."""
    with scripted_api() as server:
        server.on("GET", "/health", 200, "Health check successful; isolation: reduced (test)")
        yield server


def settings_for(data_dir: Path, **env: str) -> Settings:
    return load_settings({"SANDSCOPE_SANDBOXD_DATA_DIR": str(data_dir), **env}, secrets_file=None)


def sandboxd_dir(tmp_path: Path, api_url: str, *, key: bool = True) -> Path:
    """A data directory as a sandboxd serving at `api_url` leaves it."""
    data_dir = tmp_path / "sandboxd"
    data_dir.mkdir()
    (data_dir / "endpoints.json").write_text(json.dumps({"api_url": api_url, "envd_url": ENVD_URL}))
    if key:
        (data_dir / "api_key").write_text(SANDBOXD_KEY + "\n")
    (data_dir / "team_id").write_text(TEAM_ID + "\n")
    return data_dir


def test_with_a_key_it_is_the_configured_api(tmp_path: Path, sandboxd_api: ScriptedAPI) -> None:
    # Even with a local sandboxd running: the key says the operator chose E2B.
    settings = settings_for(sandboxd_dir(tmp_path, sandboxd_api.url), E2B_API_KEY=E2B_KEY)

    target = require_target(settings)

    assert target.source is TargetSource.SETTINGS
    assert (target.api_url, target.sandbox_url, target.team_id) == (CLOUD_API_URL, None, None)
    assert target.api_key is not None and target.api_key.get_secret_value() == E2B_KEY
    assert target.describe() == f"E2B's cloud at {CLOUD_API_URL}"
    assert sandboxd_api.requests == []  # no sandboxd probed


def test_without_a_key_it_finds_the_running_sandboxd_through_its_endpoints_file(
    tmp_path: Path, sandboxd_api: ScriptedAPI
) -> None:
    data_dir = sandboxd_dir(tmp_path, sandboxd_api.url)

    target = require_target(settings_for(data_dir))

    assert target.source is TargetSource.RUNNING_SANDBOXD
    assert (target.api_url, target.sandbox_url) == (sandboxd_api.url, ENVD_URL)
    assert target.api_key is not None and target.api_key.get_secret_value() == SANDBOXD_KEY
    assert target.team_id == TEAM_ID
    assert target.found_through == data_dir / "endpoints.json"
    assert target.describe() == (
        f"the local sandboxd at {sandboxd_api.url} (found through {data_dir / 'endpoints.json'})"
    )
    assert [r.path for r in sandboxd_api.requests] == ["/health"]


def test_the_settings_team_wins_over_sandboxd_s(tmp_path: Path, sandboxd_api: ScriptedAPI) -> None:
    settings = settings_for(sandboxd_dir(tmp_path, sandboxd_api.url), E2B_TEAM_ID="team-7")
    assert require_target(settings).team_id == "team-7"


def test_a_data_dir_without_endpoints_means_a_sandboxd_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "sandboxd"

    found = find_target(settings_for(data_dir))

    assert isinstance(found, SandboxdToStart)
    assert found.data_dir == data_dir
    assert f"there is no {data_dir / 'endpoints.json'}" in found.why


def test_nothing_found_says_what_was_looked_for_and_how_to_fix_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "sandboxd"

    with pytest.raises(TargetError) as nothing:
        require_target(settings_for(data_dir))

    message = str(nothing.value)
    assert f"no sandboxd serves from {data_dir}" in message
    assert f"there is no {data_dir / 'endpoints.json'}" in message
    for fix in ("`sandscope run`", "`sandscope sandboxd`", "SANDSCOPE_SANDBOXD_DATA_DIR"):
        assert fix in message
    assert "set E2B_API_KEY" in message


def test_a_stale_endpoints_file_is_no_sandboxd(tmp_path: Path) -> None:
    with scripted_api() as gone:
        closed_url = gone.url  # nothing listens there once the block ends
    settings = settings_for(sandboxd_dir(tmp_path, closed_url))

    with pytest.raises(TargetError, match=f"names {closed_url}, where nothing answers"):
        require_target(settings)


def test_an_unhealthy_sandboxd_is_not_used(tmp_path: Path, sandboxd_api: ScriptedAPI) -> None:
    sandboxd_api.on("GET", "/health", 503, "starting")
    settings = settings_for(sandboxd_dir(tmp_path, sandboxd_api.url))

    with pytest.raises(TargetError, match=r"/health \(from .*\) answered 503"):
        require_target(settings)


@pytest.mark.parametrize("content", ["not json", "[]", '{"api_url": "http://x"}'])
def test_a_broken_endpoints_file_is_named(tmp_path: Path, content: str) -> None:
    data_dir = tmp_path / "sandboxd"
    data_dir.mkdir()
    (data_dir / "endpoints.json").write_text(content)

    with pytest.raises(TargetError, match="does not hold sandboxd's two URLs"):
        require_target(settings_for(data_dir))


def test_a_sandboxd_whose_key_is_unreadable_is_named_with_the_key_file(
    tmp_path: Path, sandboxd_api: ScriptedAPI
) -> None:
    data_dir = sandboxd_dir(tmp_path, sandboxd_api.url, key=False)

    with pytest.raises(TargetError) as unreadable:
        require_target(settings_for(data_dir))

    assert f"a sandboxd serves at {sandboxd_api.url}" in str(unreadable.value)
    assert f"its key {data_dir / 'api_key'} is not readable" in str(unreadable.value)


def test_an_api_url_without_a_key_is_a_sandboxd_there_with_its_key(
    tmp_path: Path, sandboxd_api: ScriptedAPI
) -> None:
    data_dir = sandboxd_dir(tmp_path, "http://127.0.0.1:9")  # its endpoints are not asked
    settings = settings_for(data_dir, E2B_API_URL=sandboxd_api.url)

    target = require_target(settings)

    assert target.source is TargetSource.SETTINGS
    assert target.api_url == sandboxd_api.url
    assert target.api_key is not None and target.api_key.get_secret_value() == SANDBOXD_KEY
    assert target.team_id == TEAM_ID
    assert target.describe() == (
        f"the sandboxd at {sandboxd_api.url} (E2B_API_URL) with the key in {data_dir / 'api_key'}"
    )
    assert sandboxd_api.requests == []


def test_an_api_url_without_any_key_is_refused_naming_both_fixes(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "none", E2B_API_URL="http://127.0.0.1:9")

    with pytest.raises(TargetError) as refused:
        require_target(settings)

    assert f"not readable at {tmp_path / 'none' / 'api_key'}" in str(refused.value)
    assert "set E2B_API_KEY" in str(refused.value)


def test_a_health_check_needs_no_key(tmp_path: Path) -> None:
    nothing_local = settings_for(tmp_path / "none")
    at_url = settings_for(tmp_path / "none", E2B_API_URL="http://127.0.0.1:9")

    cloud = require_target(nothing_local, key_needed=False)
    there = require_target(at_url, key_needed=False)

    assert (cloud.api_url, cloud.api_key) == (CLOUD_API_URL, None)
    assert cloud.describe() == f"E2B's cloud at {CLOUD_API_URL} (without an API key)"
    assert (there.api_url, there.api_key) == ("http://127.0.0.1:9", None)


def test_applied_to_settings_fills_what_the_clients_read(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, SANDSCOPE_POLL_INTERVAL_S="2")
    target = Target(
        api_url="http://127.0.0.1:4000",
        sandbox_url=ENVD_URL,
        api_key=SecretStr(SANDBOXD_KEY),
        team_id=TEAM_ID,
        source=TargetSource.STARTED_SANDBOXD,
        concurrency_limit=20,
    )

    applied = target.applied_to(settings)

    assert applied.e2b_api_url == "http://127.0.0.1:4000"
    assert applied.e2b_sandbox_url == ENVD_URL
    assert applied.e2b_api_key == SecretStr(SANDBOXD_KEY)
    assert (applied.e2b_team_id, applied.concurrency_limit) == (TEAM_ID, 20)
    assert applied.poll_interval_s == 2  # the rest as it was


@pytest.mark.parametrize("started_here", [True, False])
def test_a_sandboxd_of_run_is_started_or_running(tmp_path: Path, started_here: bool) -> None:
    sandboxd = LocalSandboxd(
        api_url="http://127.0.0.1:4000",
        envd_url=ENVD_URL,
        api_key=SANDBOXD_KEY,
        team_id=TEAM_ID,
        data_dir=tmp_path,
        max_sandboxes=20,
        isolation="reduced",
    )
    if started_here:
        sandboxd.process = object()  # type: ignore[assignment]  # only its presence counts

    target = local_target(sandboxd, settings_for(tmp_path, SANDSCOPE_CONCURRENCY_LIMIT="5"))

    expected = TargetSource.STARTED_SANDBOXD if started_here else TargetSource.RUNNING_SANDBOXD
    assert target.source is expected
    assert target.is_local_sandboxd
    assert target.concurrency_limit == 5  # the setting wins over sandboxd's 20
    assert target.describe().startswith("the local sandboxd at http://127.0.0.1:4000 (")
