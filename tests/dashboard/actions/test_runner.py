"""Dashboard actions: the happy paths against a real sandboxd, API failures on a scripted
API, and the confirmation texts. Every attempt lands in the audit table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.actions.runner import ActionRunner, error_words, required_typed_confirmation
from e2bapi import E2BClient, RetryPolicy
from e2bapi import errors as e2b_errors
from sandboxd.testing import RunningSandboxd
from storage import MonitorStore
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

ACTOR = "alice"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MonitorStore]:
    with MonitorStore.open(tmp_path / "monitor.duckdb") as opened:
        yield opened


@pytest.fixture
def runner(sandboxd: RunningSandboxd, store: MonitorStore) -> Iterator[ActionRunner]:
    http = httpx.Client(base_url=sandboxd.api_url, headers={"X-API-Key": sandboxd.api_key})
    with E2BClient(http, retry=RetryPolicy(max_attempts=1)) as client:
        yield ActionRunner(client, store)


def audit(store: MonitorStore) -> list[tuple[Any, ...]]:
    """(actor, action, sandbox_ids, outcome, detail) of every audited attempt, oldest first."""
    with store._reading() as cur:
        return cur.execute(
            "SELECT actor, action, sandbox_ids, outcome, detail FROM actions ORDER BY acted_at"
        ).fetchall()


def sandbox(api: httpx.Client, sandbox_id: str) -> dict[str, Any]:
    answer = api.get(f"/sandboxes/{sandbox_id}")
    answer.raise_for_status()
    detail: dict[str, Any] = answer.json()
    return detail


def end_at(api: httpx.Client, sandbox_id: str) -> datetime:
    return datetime.fromisoformat(sandbox(api, sandbox_id)["endAt"])


# ---- against a real sandboxd ---------------------------------------------------------------


def test_pause_pause_again_extend_paused_and_resume(
    runner: ActionRunner, store: MonitorStore, api: httpx.Client, new_sandbox: Callable[[], str]
) -> None:
    sid = new_sandbox()

    [paused] = runner.run("pause", [sid], ACTOR)
    assert (paused.ok, paused.message) == (True, "paused")
    assert sandbox(api, sid)["state"] == "paused"

    [again] = runner.run("pause", [sid], ACTOR)
    assert (again.ok, again.message) == (False, "not running, cannot pause (409)")

    [extend] = runner.run("extend", [sid], ACTOR, extend_by_s=600)
    assert not extend.ok
    assert extend.message == "not running, cannot extend: resume it first"
    assert sandbox(api, sid)["state"] == "paused"  # extend never resumes

    before = datetime.now(UTC)
    [resumed] = runner.run("resume", [sid], ACTOR, resume_timeout_s=400)
    assert resumed.ok and resumed.message.startswith("resumed; ends at ")
    assert sandbox(api, sid)["state"] == "running"
    assert resumed.new_end_at == end_at(api, sid)
    assert resumed.new_end_at >= before + timedelta(seconds=400)

    assert audit(store) == [
        (ACTOR, "pause", [sid], "ok", "paused"),
        (ACTOR, "pause", [sid], "failed", "not running, cannot pause (409)"),
        (ACTOR, "extend", [sid], "failed", "not running, cannot extend: resume it first"),
        (ACTOR, "resume", [sid], "ok", resumed.message),
    ]


def test_extend_never_shortens_and_lengthens_when_asked_for_more(
    runner: ActionRunner, store: MonitorStore, api: httpx.Client, new_sandbox: Callable[[], str]
) -> None:
    sid = new_sandbox()  # ends in about 120 s
    end_before = end_at(api, sid)

    [shorter] = runner.run("extend", [sid], ACTOR, extend_by_s=30)
    assert shorter.ok
    assert "already ends later" in shorter.message
    assert shorter.new_end_at == end_before == end_at(api, sid)

    asked_at = datetime.now(UTC)
    [longer] = runner.run("extend", [sid], ACTOR, extend_by_s=900)
    assert longer.ok and longer.message.startswith("extended: now ends at ")
    assert longer.new_end_at == end_at(api, sid)
    assert longer.new_end_at >= asked_at + timedelta(seconds=900)

    assert [(row[3], row[4]) for row in audit(store)] == [
        ("ok", shorter.message),
        ("ok", longer.message),
    ]


def test_a_batch_delete_goes_on_past_a_bad_id_and_a_second_delete_is_already_gone(
    runner: ActionRunner, store: MonitorStore, api: httpx.Client, new_sandbox: Callable[[], str]
) -> None:
    first, second = new_sandbox(), new_sandbox()

    results = runner.run("delete", [first, "no-such-sandbox", second], ACTOR)

    assert [(r.sandbox_id, r.ok, r.message) for r in results] == [
        (first, True, "deleted"),
        ("no-such-sandbox", False, "already gone (404)"),
        (second, True, "deleted"),
    ]
    for sid in (first, second):
        assert api.get(f"/sandboxes/{sid}").status_code == 404

    [again] = runner.run("delete", [first], ACTOR)
    assert (again.ok, again.message) == (False, "already gone (404)")

    assert audit(store) == [
        (ACTOR, "delete", [first], "ok", "deleted"),
        (ACTOR, "delete", ["no-such-sandbox"], "failed", "already gone (404)"),
        (ACTOR, "delete", [second], "ok", "deleted"),
        (ACTOR, "delete", [first], "failed", "already gone (404)"),
    ]


# ---- on a scripted API: what the real one will not do on demand ----------------------------


def scripted_runner(api: FakeAPI, store: MonitorStore) -> ActionRunner:
    return ActionRunner(api.client(), store, clock=lambda: NOW)


def test_a_429_with_a_long_retry_after_is_reported_in_words(store: MonitorStore) -> None:
    api = FakeAPI().on(
        "POST",
        "/sandboxes/sb1/pause",
        json_response(429, {"code": 429, "message": "slow down"}, {"Retry-After": "30"}),
    )

    [result] = scripted_runner(api, store).run("pause", ["sb1"], ACTOR)

    assert not result.ok
    assert result.message == "rate limited by the API (429), try again in 30 s"
    assert audit(store) == [(ACTOR, "pause", ["sb1"], "failed", result.message)]


def test_an_unreachable_api_fails_each_sandbox_in_words_and_audits_each(
    store: MonitorStore,
) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    api = FakeAPI().on("DELETE", "/sandboxes/sb1", refused).on("DELETE", "/sandboxes/sb2", refused)

    results = scripted_runner(api, store).run("delete", ["sb1", "sb2"], ACTOR)

    for result in results:
        assert not result.ok
        assert result.message.startswith("API unreachable: ")
        assert "Connection refused" in result.message
        assert "may have acted" not in result.message  # the request never left
    assert [row[2] for row in audit(store)] == [["sb1"], ["sb2"]]
    assert {row[3] for row in audit(store)} == {"failed"}


def test_a_timeout_after_sending_warns_that_the_action_may_have_happened(
    store: MonitorStore,
) -> None:
    api = FakeAPI().on("POST", "/sandboxes/sb1/pause", httpx.ReadTimeout("timed out"))

    [result] = scripted_runner(api, store).run("pause", ["sb1"], ACTOR)

    assert "may have acted: check the sandbox's state" in result.message


def test_an_extend_capped_by_the_team_maximum_is_not_ok(store: MonitorStore) -> None:
    def detail(end: str) -> httpx.Response:
        return json_response(200, payloads.sandbox_detail(state="running", end_at=end))

    api = FakeAPI().on(
        "GET", "/sandboxes/sb1", detail("2026-11-26T10:05:00Z"), detail("2026-11-26T10:05:00Z")
    )
    api.on("POST", "/sandboxes/sb1/connect", json_response(200, payloads.sandbox()))

    [result] = scripted_runner(api, store).run("extend", ["sb1"], ACTOR, extend_by_s=3600)

    assert not result.ok
    assert "maximum sandbox length allows no more; ends at 10:05:00 UTC" in result.message
    assert result.new_end_at == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (e2b_errors.NotFoundError("E", 404, "gone"), "already gone (404)"),
        (e2b_errors.ConflictError("E", 409, "x"), "cannot be deleted in its current state (409)"),
        (
            e2b_errors.RateLimitedError("E", 429, "x"),
            "rate limited by the API (429), try again shortly",
        ),
        (e2b_errors.RateLimitedError("E", 429, "x", retry_after_s=4.2), "try again in 5 s"),
        (e2b_errors.AuthenticationError("E", 401, "x"), "the API refused the API key (401)"),
        (e2b_errors.ForbiddenError("E", 403, "x"), "may not act on this sandbox's team (403)"),
        (e2b_errors.ServiceUnavailableError("E", 503, "x"), "the API is unavailable (503)"),
        (e2b_errors.ServerError("E", 500, "boom"), "the API answered 500: boom"),
    ],
)
def test_api_errors_in_words(error: e2b_errors.E2BError, words: str) -> None:
    assert words in error_words("delete", error)


def test_bad_arguments_are_refused_before_any_call_or_audit(store: MonitorStore) -> None:
    api = FakeAPI()
    runner = scripted_runner(api, store)

    with pytest.raises(ValueError, match="extend_by_s"):
        runner.run("extend", ["sb1"], ACTOR)
    with pytest.raises(ValueError, match="unknown action"):
        runner.run("reboot", ["sb1"], ACTOR)  # type: ignore[arg-type]

    assert api.requests == []
    assert audit(store) == []


def test_a_doubled_id_is_acted_on_once(store: MonitorStore) -> None:
    api = FakeAPI().on("POST", "/sandboxes/sb1/pause", httpx.Response(204))

    results = scripted_runner(api, store).run("pause", ["sb1", "sb1"], ACTOR)

    assert len(results) == 1 and len(api.requests) == 1


# ---- what the dialogs say --------------------------------------------------------------------


def test_confirmations_name_the_action_the_count_the_ids_and_what_happens(
    store: MonitorStore,
) -> None:
    runner = scripted_runner(FakeAPI(), store)

    assert runner.confirmation("delete", ["ia1", "ib2", "ic3"]) == (
        "Delete 3 sandboxes (ia1, ib2, ic3): they are killed at once and cannot be brought back."
    )
    assert runner.confirmation("delete", ["ia1"]) == (
        "Delete 1 sandbox (ia1): it is killed at once and cannot be brought back."
    )
    extend = runner.confirmation("extend", ["ia1", "ib2"], extend_by_s=1800)
    assert extend.startswith("Extend 2 sandboxes (ia1, ib2) by 30 min: ")
    assert "never shortens" in extend
    pause = runner.confirmation("pause", ["ia1"])
    assert pause.startswith("Pause 1 sandbox (ia1): it stops running")
    resume = runner.confirmation("resume", ["ia1", "ib2"], resume_timeout_s=3900)
    assert resume.startswith("Resume 2 sandboxes (ia1, ib2): ")
    assert "1 h 5 min from now" in resume


def test_confirmation_refuses_nothing_selected_and_an_extend_without_an_amount(
    store: MonitorStore,
) -> None:
    runner = scripted_runner(FakeAPI(), store)

    with pytest.raises(ValueError, match="no sandbox"):
        runner.confirmation("pause", [])
    with pytest.raises(ValueError, match="extend_by_s"):
        runner.confirmation("extend", ["ia1"], extend_by_s=0)


def test_only_a_bulk_delete_asks_for_the_count_to_be_typed() -> None:
    assert required_typed_confirmation("delete", 3) == "3"
    assert required_typed_confirmation("delete", 1) is None
    assert required_typed_confirmation("pause", 5) is None
