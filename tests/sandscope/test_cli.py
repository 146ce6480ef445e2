"""`sandscope api` and `sandscope run` against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2bapi.catalog import CATALOG
from sandscope.cli import main
from tests.e2bapi import payloads
from tests.sandscope.local_api import ScriptedAPI, scripted_api

API_KEY = "e2b_00112233445566778899aabbccddeeff00112233"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ScriptedAPI]:
    """A scripted API, with the environment pointing sandscope at it."""
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml of the repository
    for name in ("E2B_TEAM_ID", "E2B_SANDBOX_URL", "SANDSCOPE_DB", "SANDSCOPE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    no_sandboxd(monkeypatch, tmp_path)
    with scripted_api() as server:
        monkeypatch.setenv("E2B_API_URL", server.url)
        monkeypatch.setenv("E2B_API_KEY", API_KEY)
        monkeypatch.setenv("SANDSCOPE_MAX_ATTEMPTS", "2")
        yield server


def no_sandboxd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point sandscope at an empty sandboxd data directory (not this machine's own)."""
    monkeypatch.delenv("SANDBOXD_DATA_DIR", raising=False)
    monkeypatch.setenv("SANDSCOPE_SANDBOXD_DATA_DIR", str(tmp_path / "no-sandboxd"))
    return tmp_path / "no-sandboxd"


def test_help_lists_every_action_of_the_catalog() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "sandscope", "api", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    missing = [entry.name for entry in CATALOG if entry.name not in shown]
    assert not missing, f"--help does not list {missing}"
    assert len(CATALOG) == 28  # the 27 actions and extend


def test_prints_the_answer_as_json_and_sends_the_key(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("GET", f"/sandboxes/{payloads.SANDBOX_ID}", 200, payloads.sandbox_detail())
    code = main(["api", "get-sandbox", "--json", json.dumps({"sandbox_id": payloads.SANDBOX_ID})])
    out = capsys.readouterr()
    assert code == 0, out.err
    answer = json.loads(out.out)
    assert answer["sandboxID"] == payloads.SANDBOX_ID
    assert answer["memoryMB"] == 512
    assert api.requests[0].headers["X-API-Key"] == API_KEY


def test_api_error_goes_to_stderr_with_exit_code_1(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("DELETE", "/sandboxes/gone", 404, payloads.error(404, "sandbox gone not found"))
    code = main(["api", "kill-sandbox", "--json", '{"sandbox_id": "gone"}'])
    out = capsys.readouterr()
    assert code == 1
    assert out.out == ""
    assert "DELETE /sandboxes/{sandboxID} answered 404: sandbox gone not found" in out.err


@pytest.mark.parametrize(
    ("json_args", "expected"),
    [
        ("not json", "--json is not valid JSON"),
        ("[1, 2]", "--json must be a JSON object"),
        ('{"sandbox_id": 5}', "sandbox_id: Input should be a valid string"),
        ("{}", "sandbox_id: Missing required argument"),
        ('{"sandbox_id": "a", "colour": "red"}', "colour: Unexpected keyword argument"),
    ],
)
def test_bad_arguments_exit_2_without_calling_the_api(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str], json_args: str, expected: str
) -> None:
    code = main(["api", "get-sandbox", "--json", json_args])
    assert code == 2
    assert expected in capsys.readouterr().err
    assert api.requests == []


def test_an_actions_own_range_check_is_a_usage_error(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["api", "refresh-sandbox", "--json", '{"sandbox_id": "a", "duration_s": 5}'])
    assert code == 2
    assert "duration_s must be 15..3600 seconds" in capsys.readouterr().err
    assert api.requests == []


def test_model_arguments_take_wire_names(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("POST", "/sandboxes", 201, payloads.sandbox())
    arguments = {"new_sandbox": {"templateID": "base", "timeout": 60}}
    code = main(["api", "create-sandbox", "--json", json.dumps(arguments)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(api.requests[0].body) == {"templateID": "base", "timeout": 60}


def test_team_id_is_learned_from_an_event_when_not_configured(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api.on("GET", "/events/sandboxes", 200, [payloads.sandbox_event()])
    api.on("GET", f"/teams/{payloads.TEAM_ID}/metrics", 200, [payloads.team_metric()])
    code = main(["api", "team-metrics"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)[0]["concurrentSandboxes"] == 7
    assert f"team ID {payloads.TEAM_ID} learned from a lifecycle event" in caplog.text


def test_missing_team_id_names_the_setting(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("GET", "/events/sandboxes", 200, [])
    code = main(["api", "team-max-metric", "--json", '{"metric": "sandbox_start_rate"}'])
    assert code == 1
    assert "E2B_TEAM_ID is not set" in capsys.readouterr().err


def test_api_key_is_required_except_for_health(
    api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("E2B_API_KEY")
    assert main(["api", "list-sandboxes"]) == 2
    assert "E2B_API_KEY is not set" in capsys.readouterr().err
    api.on("GET", "/health", 200, "Health check successful")
    assert main(["api", "health"]) == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True


def test_status_prints_configuration_and_health(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on("GET", "/health", 200, "Health check successful")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "E2B_API_URL" in out and api.url in out
    assert "healthy (200 Health check successful)" in out


def test_status_reports_an_unreachable_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with scripted_api() as server:
        closed_url = server.url  # nothing listens there once the block ends
    monkeypatch.setenv("E2B_API_URL", closed_url)
    monkeypatch.setenv("E2B_API_KEY", API_KEY)
    monkeypatch.setenv("SANDSCOPE_MAX_ATTEMPTS", "1")
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"API: the E2B API at {closed_url}\n" in out
    assert f"API {closed_url}: unreachable" in out


def test_with_no_api_to_find_status_and_api_say_what_to_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("E2B_API_KEY", "E2B_API_URL"):
        monkeypatch.delenv(name, raising=False)
    data_dir = no_sandboxd(monkeypatch, tmp_path)
    looked_for = f"no sandboxd serves from {data_dir}: there is no {data_dir / 'endpoints.json'}"

    assert main(["status"]) == 2
    status = capsys.readouterr().out
    assert main(["api", "list-sandboxes"]) == 2
    api_err = capsys.readouterr().err

    assert "sandscope configuration:" in status  # still shown: it is what to check
    assert f"API: none found. E2B_API_KEY is not set and {looked_for}" in status
    assert looked_for in api_err and "`sandscope run`" in api_err


def test_bad_setting_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SANDSCOPE_POLL_INTERVAL_S", "soon")
    assert main(["status"]) == 2
    assert "SANDSCOPE_POLL_INTERVAL_S" in capsys.readouterr().err


def test_sandboxd_subcommand_runs_sandboxd_with_its_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANDBOXD_API_PORT", "not-a-port")
    assert main(["sandboxd"]) == 2
    assert "SANDBOXD_API_PORT must be" in capsys.readouterr().err
