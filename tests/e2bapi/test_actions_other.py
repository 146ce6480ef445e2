"""Logs, events, templates, webhooks and health: requests sent and answers read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from e2bapi import actions
from e2bapi.errors import AuthenticationError, NotFoundError
from e2bapi.exchange import Exchange
from e2bapi.models.events import SandboxEvent
from e2bapi.models.health import Health
from e2bapi.models.templates import (
    TemplateBuildFileUpload,
    TemplateBuildInfo,
    TemplateBuildRequestV3,
    TemplateBuildStartV2,
    TemplateRequestResponseV3,
    TemplateStep,
    TemplateUpdateResponse,
)
from e2bapi.models.webhooks import WebhookConfiguration, WebhookCreate, WebhookDetail
from tests.e2bapi import payloads
from tests.e2bapi.fake_api import FakeAPI, json_response

SID = payloads.SANDBOX_ID
TEMPLATE_ID = "rki5dems9wqfm4r03t7g"
BUILD_ID = payloads.BUILD_ID
WEBHOOK_ID = payloads.WEBHOOK_ID
SECRET = "whsec-0123456789abcdef0123456789abcdef"


def event(event_id: str, timestamp: str = "2026-11-26T10:05:00Z") -> dict[str, object]:
    return payloads.sandbox_event(event_id=event_id, timestamp=timestamp)


# --- logs ---------------------------------------------------------------------------------


def test_logs_send_cursor_in_ms_and_every_filter() -> None:
    api = FakeAPI().on(
        "GET", f"/v2/sandboxes/{SID}/logs", json_response(200, payloads.sandbox_logs())
    )
    cursor = datetime(2026, 11, 26, 10, 0, 1, 250_000, tzinfo=UTC)

    lines = api.client().run(
        actions.sandbox_logs(
            SID, cursor=cursor, limit=500, direction="backward", level="warn", search="Out of"
        )
    )

    assert dict(api.requests[0].url.params) == {
        "cursor": "1795687201250",
        "limit": "500",
        "direction": "backward",
        "level": "warn",
        "search": "Out of",
    }
    assert [line.level for line in lines] == ["error"]
    assert lines[0].fields == {"pid": "4819"}


def test_logs_without_filters_send_no_query() -> None:
    api = FakeAPI().on("GET", f"/v2/sandboxes/{SID}/logs", json_response(200, {"logs": []}))

    assert api.client().run(actions.sandbox_logs(SID)) == []
    assert dict(api.requests[0].url.params) == {}


@pytest.mark.parametrize(("limit", "search"), [(1000, None), (None, "x" * 256), (0, "")])
def test_logs_accept_the_largest_limit_and_search(limit: int | None, search: str | None) -> None:
    api = FakeAPI().on("GET", f"/v2/sandboxes/{SID}/logs", json_response(200, {"logs": []}))

    api.client().run(actions.sandbox_logs(SID, limit=limit, search=search))

    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        pytest.param({"limit": 1001}, "limit", id="limit-over-1000"),
        pytest.param({"limit": -1}, "limit", id="negative-limit"),
        pytest.param({"search": "x" * 257}, "search", id="search-over-256"),
        pytest.param({"cursor": datetime(2026, 11, 26)}, "time zone", id="naive-cursor"),
    ],
)
def test_logs_refuse_out_of_range_arguments_before_any_request(
    options: dict[str, Any], problem: str
) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match=problem):
        api.client().run(actions.sandbox_logs(SID, **options))
    assert api.requests == []


# --- events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "path"),
    [
        pytest.param(
            lambda **options: actions.sandbox_events(SID, **options),
            f"/events/sandboxes/{SID}",
            id="sandbox",
        ),
        pytest.param(
            lambda **options: actions.team_events(**options), "/events/sandboxes", id="team"
        ),
    ],
)
def test_events_page_by_offset_until_a_short_page_keeping_shifted_duplicates_once(
    action: Callable[..., Exchange[list[SandboxEvent]]], path: str
) -> None:
    """Page 2 repeats e2 (a new event pushed it down): it is kept once."""
    api = FakeAPI().on(
        "GET",
        path,
        json_response(200, [event("e1"), event("e2")]),
        json_response(200, [event("e2"), event("e3")]),
        json_response(200, [event("e4")]),
    )
    types = ["sandbox.lifecycle.killed", "sandbox.lifecycle.paused"]

    found = api.client().run(action(types=types, order_asc=True, page_limit=2))

    assert [e.id for e in found] == ["e1", "e2", "e3", "e4"]
    assert [r.url.params["offset"] for r in api.requests] == ["0", "2", "4"]
    for request in api.requests:
        assert request.url.params["limit"] == "2"
        assert request.url.params["orderAsc"] == "true"
        assert request.url.params.get_list("types") == types


def test_events_default_to_newest_first_without_types() -> None:
    api = FakeAPI().on("GET", "/events/sandboxes", json_response(200, [event("e1")]))

    found = api.client().run(actions.team_events())

    assert dict(api.requests[0].url.params) == {
        "offset": "0",
        "limit": "100",
        "orderAsc": "false",
    }
    assert found[0].sandbox_team_id == payloads.TEAM_ID
    assert found[0].event_data == {"kill_reason": "timeout"}


def test_events_since_stops_paging_newest_first_at_the_first_older_event() -> None:
    api = FakeAPI().on(
        "GET",
        "/events/sandboxes",
        json_response(
            200, [event("e5", "2026-11-26T10:05:00Z"), event("e4", "2026-11-26T10:04:00Z")]
        ),
        json_response(
            200, [event("e3", "2026-11-26T10:00:00Z"), event("e2", "2026-11-26T09:59:59Z")]
        ),
        json_response(
            200, [event("e1", "2026-11-26T09:00:00Z"), event("e0", "2026-11-26T08:00:00Z")]
        ),
    )
    since = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    found = api.client().run(actions.team_events(since=since, page_limit=2))

    assert [e.id for e in found] == ["e5", "e4", "e3"]  # e3 is exactly at `since`: kept
    assert len(api.requests) == 2


def test_events_since_oldest_first_filters_but_pages_to_the_end() -> None:
    api = FakeAPI().on(
        "GET",
        "/events/sandboxes",
        json_response(
            200, [event("e1", "2026-11-26T09:00:00Z"), event("e2", "2026-11-26T10:01:00Z")]
        ),
        json_response(200, [event("e3", "2026-11-26T10:02:00Z")]),
    )
    since = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    found = api.client().run(actions.team_events(since=since, order_asc=True, page_limit=2))

    assert [e.id for e in found] == ["e2", "e3"]
    assert len(api.requests) == 2


def test_events_refuse_a_naive_since_before_any_request() -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match="time zone"):
        api.client().run(actions.team_events(since=datetime(2026, 11, 26)))
    assert api.requests == []


# --- templates ----------------------------------------------------------------------------


def test_list_templates_follows_x_next_token() -> None:
    second = payloads.template() | {"templateID": "second"}
    api = FakeAPI().on(
        "GET",
        "/v2/templates",
        json_response(200, [payloads.template()], {"X-Next-Token": "page-2"}),
        json_response(200, [second]),
    )

    templates = api.client().run(actions.list_templates(team_id=payloads.TEAM_ID))

    assert [t.template_id for t in templates] == [TEMPLATE_ID, "second"]
    assert [r.url.params.get("nextToken") for r in api.requests] == [None, "page-2"]
    assert all(r.url.params["teamID"] == payloads.TEAM_ID for r in api.requests)
    assert templates[0].build_status == "ready"


def test_get_template_reads_its_builds_and_bounds_the_page() -> None:
    path = f"/templates/{TEMPLATE_ID}"
    api = FakeAPI().on("GET", path, json_response(200, payloads.template_with_builds()))

    got = api.client().run(actions.get_template(TEMPLATE_ID, limit=20))

    assert api.requests[0].url.params["limit"] == "20"
    (build,) = got.builds
    assert (build.build_id, build.status, build.memory_mb) == (BUILD_ID, "ready", 512)
    assert build.finished_at is not None and got.spawn_count == 3
    for bad in (0, 101):
        with pytest.raises(ValueError, match=r"limit must be 1\.\.100"):
            api.client().run(actions.get_template(TEMPLATE_ID, limit=bad))


def test_template_by_alias_reads_200_as_the_template_and_404_as_none() -> None:
    api = (
        FakeAPI()
        .on(
            "GET",
            "/templates/aliases/taken",
            json_response(200, payloads.template_alias_response()),
        )
        .on("GET", "/templates/aliases/free", json_response(404, {"code": 404, "message": "no"}))
    )
    found = api.client().run(actions.template_by_alias("taken"))
    assert found is not None and found.template_id == TEMPLATE_ID
    assert api.client().run(actions.template_by_alias("free")) is None


def test_template_tags_reads_each_tag_with_its_build() -> None:
    path = f"/templates/{TEMPLATE_ID}/tags"
    api = FakeAPI().on("GET", path, json_response(200, [payloads.template_tag()]))
    (tag,) = api.client().run(actions.template_tags(TEMPLATE_ID))
    assert (tag.tag, tag.build_id) == ("v1", BUILD_ID)


def test_create_template_sends_wire_names_and_reads_the_202() -> None:
    api = FakeAPI().on(
        "POST", "/v3/templates", json_response(202, payloads.template_request_response_v3())
    )
    request = TemplateBuildRequestV3(name="my-template", tags=["v1"], cpu_count=2, memory_mb=1024)

    created = api.client().run(actions.create_template(request))

    assert api.bodies() == [
        {"name": "my-template", "tags": ["v1"], "cpuCount": 2, "memoryMB": 1024}
    ]
    assert isinstance(created, TemplateRequestResponseV3)
    assert created.build_id == BUILD_ID


def test_files_upload_link_accepts_the_201_a_get_answers() -> None:
    path = f"/templates/{TEMPLATE_ID}/files/abc123"
    api = FakeAPI().on("GET", path, json_response(201, payloads.template_build_file_upload()))

    upload = api.client().run(actions.template_files_upload(TEMPLATE_ID, "abc123"))

    assert isinstance(upload, TemplateBuildFileUpload)
    assert upload.present is False
    assert upload.url == "https://storage.example/upload?sig=abc"


def test_start_build_sends_the_steps_and_accepts_a_202_without_body() -> None:
    path = f"/v2/templates/{TEMPLATE_ID}/builds/{BUILD_ID}"
    api = FakeAPI().on("POST", path, httpx.Response(202))
    build = TemplateBuildStartV2(
        from_image="python:3.12",
        steps=[TemplateStep(type="RUN", args=["pip install x"], files_hash="abc123")],
        start_cmd="python app.py",
    )

    assert api.client().run(actions.start_template_build(TEMPLATE_ID, BUILD_ID, build)) is None
    assert api.bodies() == [
        {
            "fromImage": "python:3.12",
            "steps": [{"type": "RUN", "args": ["pip install x"], "filesHash": "abc123"}],
            "startCmd": "python app.py",
        }
    ]


def test_build_status_sends_logs_offset_limit_and_level() -> None:
    path = f"/templates/{TEMPLATE_ID}/builds/{BUILD_ID}/status"
    api = FakeAPI().on("GET", path, json_response(200, payloads.template_build_info()))

    info = api.client().run(
        actions.template_build_status(TEMPLATE_ID, BUILD_ID, logs_offset=5, limit=50, level="info")
    )

    assert dict(api.requests[0].url.params) == {"logsOffset": "5", "limit": "50", "level": "info"}
    assert isinstance(info, TemplateBuildInfo)
    assert info.status == "building"
    assert info.log_entries[0].message == "step 1/2"


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"logs_offset": -1}, "logs_offset"), ({"limit": 101}, "limit")],
)
def test_build_status_refuses_out_of_range_arguments(options: dict[str, Any], problem: str) -> None:
    api = FakeAPI()

    with pytest.raises(ValueError, match=problem):
        api.client().run(actions.template_build_status(TEMPLATE_ID, BUILD_ID, **options))
    assert api.requests == []


def test_unknown_build_answered_400_not_found_is_a_not_found_error() -> None:
    """E2B answers an unknown build with 400 "Build '<id>' not found", not 404."""
    path = f"/templates/{TEMPLATE_ID}/builds/x/status"
    api = FakeAPI().on("GET", path, json_response(400, payloads.error(400, "Build 'x' not found")))

    with pytest.raises(NotFoundError) as raised:
        api.client().run(actions.template_build_status(TEMPLATE_ID, "x"))

    assert raised.value.status_code == 400
    assert "Build 'x' not found" in str(raised.value)
    assert str(raised.value).startswith(
        "GET /templates/{templateID}/builds/{buildID}/status answered 400"
    )
    assert len(api.requests) == 1


def test_update_template_patches_v2_with_public() -> None:
    path = f"/v2/templates/{TEMPLATE_ID}"
    api = FakeAPI().on("PATCH", path, json_response(200, payloads.template_update_response()))

    updated = api.client().run(actions.update_template(TEMPLATE_ID, public=True))

    assert [(r.method, r.url.path) for r in api.requests] == [("PATCH", path)]
    assert api.bodies() == [{"public": True}]
    assert isinstance(updated, TemplateUpdateResponse)
    assert updated.names == ["team-slug/my-template"]


# --- webhooks -----------------------------------------------------------------------------


def test_create_webhook_sends_the_secret_on_the_wire_and_reads_the_201() -> None:
    api = FakeAPI().on("POST", "/events/webhooks", json_response(201, payloads.webhook_detail()))
    webhook = WebhookCreate(
        name="ops",
        url="https://hooks.example/e2b",
        events=["sandbox.lifecycle.killed"],
        signature_secret=SECRET,
    )

    created = api.client().run(actions.create_webhook(webhook))

    assert api.bodies() == [
        {
            "name": "ops",
            "url": "https://hooks.example/e2b",
            "events": ["sandbox.lifecycle.killed"],
            "signatureSecret": SECRET,
        }
    ]
    assert isinstance(created, WebhookDetail)
    assert created.id == WEBHOOK_ID
    assert created.team_id == payloads.TEAM_ID


@pytest.mark.parametrize(
    "request_model",
    [
        pytest.param(
            WebhookCreate(
                name="ops",
                url="https://hooks.example/e2b",
                events=[],
                signature_secret=SECRET,
            ),
            id="create",
        ),
        pytest.param(WebhookConfiguration(signature_secret=SECRET), id="update"),
    ],
)
def test_the_webhook_secret_never_shows_in_repr_or_str(request_model: object) -> None:
    assert SECRET not in repr(request_model)
    assert SECRET not in str(request_model)


def test_webhook_secret_shorter_than_32_characters_is_refused() -> None:
    with pytest.raises(ValueError, match=r"signatureSecret|signature_secret"):
        WebhookCreate(name="ops", url="https://x", events=[], signature_secret="short")


def test_list_and_get_webhooks() -> None:
    api = FakeAPI().on("GET", "/events/webhooks", json_response(200, [payloads.webhook_detail()]))
    api.on("GET", f"/events/webhooks/{WEBHOOK_ID}", json_response(200, payloads.webhook_detail()))
    client = api.client()

    listed = client.run(actions.list_webhooks())
    one = client.run(actions.get_webhook(WEBHOOK_ID))

    assert [w.id for w in listed] == [WEBHOOK_ID]
    assert one.events == ["sandbox.lifecycle.killed"]
    assert [r.url.path for r in api.requests] == [
        "/events/webhooks",
        f"/events/webhooks/{WEBHOOK_ID}",
    ]


def test_update_webhook_patches_only_the_fields_given() -> None:
    path = f"/events/webhooks/{WEBHOOK_ID}"
    answer = payloads.webhook_detail() | {"enabled": False}
    api = FakeAPI().on("PATCH", path, json_response(200, answer))

    updated = api.client().run(
        actions.update_webhook(WEBHOOK_ID, WebhookConfiguration(enabled=False))
    )

    assert [(r.method, r.url.path) for r in api.requests] == [("PATCH", path)]
    assert api.bodies() == [{"enabled": False}]
    assert updated.enabled is False


def test_delete_webhook_accepts_200_without_body() -> None:
    api = FakeAPI().on("DELETE", f"/events/webhooks/{WEBHOOK_ID}", httpx.Response(200))

    assert api.client().run(actions.delete_webhook(WEBHOOK_ID)) is None
    assert [r.method for r in api.requests] == ["DELETE"]


# --- health -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            httpx.Response(200, text="Health check successful"),
            Health(healthy=True, status_code=200, detail="Health check successful"),
            id="200-text",
        ),
        pytest.param(
            httpx.Response(204),
            Health(healthy=True, status_code=204, detail="(no body)"),
            id="204",
        ),
        pytest.param(
            json_response(503, payloads.error(503, "overloaded")),
            Health(healthy=False, status_code=503, detail="overloaded"),
            id="503",
        ),
    ],
)
def test_health_reports_what_it_sees_without_retrying(
    answer: httpx.Response, expected: Health
) -> None:
    api = FakeAPI().on("GET", "/health", answer)

    assert api.client().run(actions.check_health()) == expected
    assert len(api.requests) == 1
    assert api.sleeps_s == []


def test_health_with_a_bad_key_raises_authentication_error() -> None:
    api = FakeAPI().on("GET", "/health", json_response(401, payloads.error(401, "Invalid API key")))

    with pytest.raises(AuthenticationError, match="GET /health answered 401: Invalid API key"):
        api.client().run(actions.check_health())
