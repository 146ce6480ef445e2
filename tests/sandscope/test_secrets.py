"""The API key never shows: not in a repr, a log line, an error message or the output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2bapi.models.webhooks import WebhookCreate
from sandscope.cli import main
from sandscope.clients import open_client
from sandscope.settings import describe, load_settings
from tests.e2bapi import payloads
from tests.e2bapi.samples import WEBHOOK_SECRET
from tests.sandscope.local_api import ScriptedAPI, scripted_api

SECRET_KEY = "e2b_5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ScriptedAPI]:
    monkeypatch.chdir(tmp_path)
    with scripted_api() as server:
        monkeypatch.setenv("E2B_API_URL", server.url)
        monkeypatch.setenv("E2B_API_KEY", SECRET_KEY)
        monkeypatch.setenv("SANDSCOPE_MAX_ATTEMPTS", "2")
        monkeypatch.setenv("SANDSCOPE_LOG_LEVEL", "DEBUG")
        yield server


def test_key_absent_from_every_output_log_and_error(
    api: ScriptedAPI, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore
    api.on("GET", "/sandboxes/a", 200, payloads.sandbox_detail())
    api.on("GET", "/sandboxes/unauthorized", 401, payloads.error(401, "Invalid API key"))
    api.on("GET", "/sandboxes/broken", 500, payloads.error(500, "internal error"))
    api.on("GET", "/sandboxes/garbled", 200, "<html>not json</html>")
    api.on("POST", "/sandboxes", 429, payloads.error(429, "slow down"), **{"Retry-After": "60"})
    runs = [
        ["api", "get-sandbox", "--json", '{"sandbox_id": "a"}'],
        ["api", "get-sandbox", "--json", '{"sandbox_id": "unauthorized"}'],
        ["api", "get-sandbox", "--json", '{"sandbox_id": "broken"}'],
        ["api", "get-sandbox", "--json", '{"sandbox_id": "garbled"}'],
        ["api", "create-sandbox", "--json", '{"new_sandbox": {"templateID": "base"}}'],
        ["api", "get-sandbox", "--json", "{not json"],
        ["status"],
    ]
    codes = [main(run) for run in runs]
    assert codes == [0, 1, 1, 1, 1, 2, 0]
    # The key did travel, so its absence below means something.
    assert all(seen.headers["X-API-Key"] == SECRET_KEY for seen in api.requests)
    output = capsys.readouterr()
    assert caplog.records, "no log line was captured: the check below would prove nothing"
    for text in (output.out, output.err, caplog.text):
        assert SECRET_KEY not in text


def test_key_absent_from_settings_and_client_reprs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("E2B_API_KEY", SECRET_KEY)
    settings = load_settings(secrets_file=tmp_path / "absent.toml")
    assert settings.e2b_api_key is not None
    with open_client(settings) as client:
        shown = [repr(settings), str(settings), repr(describe(settings)), repr(client)]
        shown.append(repr(client._http))  # the httpx client that holds the header
    for text in shown:
        assert SECRET_KEY not in text


def test_webhook_secret_absent_from_request_model_repr_but_sent_on_the_wire() -> None:
    webhook = WebhookCreate(
        name="ops", url="https://hooks.example/e2b", events=[], signature_secret=WEBHOOK_SECRET
    )
    assert WEBHOOK_SECRET not in repr(webhook)
    assert WEBHOOK_SECRET not in str(webhook)
    assert WEBHOOK_SECRET not in webhook.model_dump_json()
    assert webhook.to_wire()["signatureSecret"] == WEBHOOK_SECRET
