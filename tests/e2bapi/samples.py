"""For tests that sweep the whole catalog: one typical invocation of every action, and a
spec-shaped success answer for every endpoint those invocations call."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from e2bapi import actions
from e2bapi.exchange import Exchange
from e2bapi.models.sandboxes import NewSandbox
from e2bapi.models.templates import TemplateBuildRequestV3, TemplateBuildStartV2, TemplateStep
from e2bapi.models.webhooks import WebhookConfiguration, WebhookCreate
from tests.e2bapi import payloads
from tests.e2bapi.payloads import BUILD_ID, SANDBOX_ID, TEAM_ID, WEBHOOK_ID

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
END = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
WEBHOOK_SECRET = "whsec-0123456789abcdef0123456789abcdef"

SAMPLE_ACTIONS: dict[str, Callable[[], Exchange[Any]]] = {
    "health": lambda: actions.check_health(),
    "create-sandbox": lambda: actions.create_sandbox(
        NewSandbox(
            template_id="base",
            timeout_s=300,
            metadata={"owner": "ci"},
            allow_internet_access=False,
            secure=True,
        )
    ),
    "get-sandbox": lambda: actions.get_sandbox(SANDBOX_ID),
    "list-sandboxes": lambda: actions.list_sandboxes(
        states=["running", "paused"], metadata={"owner": "ci"}
    ),
    "pause-sandbox": lambda: actions.pause_sandbox(SANDBOX_ID),
    "connect-sandbox": lambda: actions.connect_sandbox(SANDBOX_ID, timeout_s=300),
    "kill-sandbox": lambda: actions.kill_sandbox(SANDBOX_ID),
    "set-timeout": lambda: actions.set_sandbox_timeout(SANDBOX_ID, timeout_s=600),
    "refresh-sandbox": lambda: actions.refresh_sandbox(SANDBOX_ID, duration_s=60),
    "extend-sandbox": lambda: actions.extend_sandbox(
        SANDBOX_ID, 600, clock=lambda: datetime(2026, 11, 26, 10, 10, tzinfo=UTC)
    ),
    "sandbox-logs": lambda: actions.sandbox_logs(
        SANDBOX_ID, cursor=START, limit=100, direction="forward", level="info", search="oom"
    ),
    "sandbox-metrics": lambda: actions.sandbox_metrics(SANDBOX_ID, start=START, end=END),
    "sandboxes-metrics": lambda: actions.sandboxes_metrics([SANDBOX_ID, "other-sandbox"]),
    "sandbox-events": lambda: actions.sandbox_events(
        SANDBOX_ID, types=["sandbox.lifecycle.killed"]
    ),
    "team-events": lambda: actions.team_events(
        types=["sandbox.lifecycle.created", "sandbox.lifecycle.killed"]
    ),
    "team-metrics": lambda: actions.team_metrics(TEAM_ID, start=START, end=END),
    "team-max-metric": lambda: actions.team_max_metric(
        TEAM_ID, "concurrent_sandboxes", start=START, end=END
    ),
    "list-templates": lambda: actions.list_templates(),
    "create-template": lambda: actions.create_template(
        TemplateBuildRequestV3(name="my-template:v1", cpu_count=2, memory_mb=512)
    ),
    "template-files-upload": lambda: actions.template_files_upload("my-template", "abc123"),
    "start-template-build": lambda: actions.start_template_build(
        "my-template",
        BUILD_ID,
        TemplateBuildStartV2(
            from_image="python:3.12", steps=[TemplateStep(type="RUN", args=["pip install x"])]
        ),
    ),
    "template-build-status": lambda: actions.template_build_status(
        "my-template", BUILD_ID, logs_offset=5, limit=50, level="info"
    ),
    "update-template": lambda: actions.update_template("my-template", public=True),
    "create-webhook": lambda: actions.create_webhook(
        WebhookCreate(
            name="ops",
            url="https://hooks.example/e2b",
            events=["sandbox.lifecycle.killed"],
            signature_secret=WEBHOOK_SECRET,
        )
    ),
    "list-webhooks": lambda: actions.list_webhooks(),
    "get-webhook": lambda: actions.get_webhook(WEBHOOK_ID),
    "update-webhook": lambda: actions.update_webhook(
        WEBHOOK_ID, WebhookConfiguration(enabled=False)
    ),
    "delete-webhook": lambda: actions.delete_webhook(WEBHOOK_ID),
}
# Actions the dashboard uses that `sandscope api` does not name (not among E2B's 27 of the
# issue's list): checked against the spec all the same.
DASHBOARD_ACTIONS: dict[str, Callable[[], Exchange[Any]]] = {
    "get-template": lambda: actions.get_template("my-template", limit=20),
    "template-by-alias": lambda: actions.template_by_alias("my-template"),
    "template-tags": lambda: actions.template_tags("my-template"),
}


# --- a spec-shaped success answer for every endpoint ----------------------------------------

Body = Callable[[httpx.Request], Any]


def _metrics_of_requested(request: httpx.Request) -> Any:
    return payloads.sandboxes_with_metrics(request.url.params["sandbox_ids"].split(","))


# (method, path template as the spec writes it) -> (status, body or None for no body).
SUCCESS_ANSWERS: dict[tuple[str, str], tuple[int, Body | None]] = {
    ("GET", "/health"): (204, None),
    ("POST", "/sandboxes"): (201, lambda _: payloads.sandbox()),
    ("GET", "/sandboxes/{sandboxID}"): (200, lambda _: payloads.sandbox_detail()),
    ("DELETE", "/sandboxes/{sandboxID}"): (204, None),
    ("GET", "/v2/sandboxes"): (200, lambda _: [payloads.listed_sandbox()]),
    ("POST", "/sandboxes/{sandboxID}/pause"): (204, None),
    ("POST", "/sandboxes/{sandboxID}/connect"): (200, lambda _: payloads.sandbox()),
    ("POST", "/sandboxes/{sandboxID}/timeout"): (204, None),
    ("POST", "/sandboxes/{sandboxID}/refreshes"): (204, None),
    ("GET", "/v2/sandboxes/{sandboxID}/logs"): (200, lambda _: payloads.sandbox_logs()),
    ("GET", "/sandboxes/{sandboxID}/metrics"): (200, lambda _: [payloads.sandbox_metric()]),
    ("GET", "/sandboxes/metrics"): (200, _metrics_of_requested),
    ("GET", "/events/sandboxes/{sandboxID}"): (200, lambda _: [payloads.sandbox_event()]),
    ("GET", "/events/sandboxes"): (200, lambda _: [payloads.sandbox_event()]),
    ("GET", "/teams/{teamID}/metrics"): (200, lambda _: [payloads.team_metric()]),
    ("GET", "/teams/{teamID}/metrics/max"): (200, lambda _: payloads.max_team_metric()),
    ("GET", "/v2/templates"): (200, lambda _: [payloads.template()]),
    ("GET", "/templates/{templateID}"): (200, lambda _: payloads.template_with_builds()),
    ("GET", "/templates/aliases/{alias}"): (200, lambda _: payloads.template_alias_response()),
    ("GET", "/templates/{templateID}/tags"): (200, lambda _: [payloads.template_tag()]),
    ("POST", "/v3/templates"): (202, lambda _: payloads.template_request_response_v3()),
    ("GET", "/templates/{templateID}/files/{hash}"): (
        201,
        lambda _: payloads.template_build_file_upload(),
    ),
    ("POST", "/v2/templates/{templateID}/builds/{buildID}"): (202, None),
    ("GET", "/templates/{templateID}/builds/{buildID}/status"): (
        200,
        lambda _: payloads.template_build_info(),
    ),
    ("PATCH", "/v2/templates/{templateID}"): (200, lambda _: payloads.template_update_response()),
    ("POST", "/events/webhooks"): (201, lambda _: payloads.webhook_detail()),
    ("GET", "/events/webhooks"): (200, lambda _: [payloads.webhook_detail()]),
    ("GET", "/events/webhooks/{webhookID}"): (200, lambda _: payloads.webhook_detail()),
    ("PATCH", "/events/webhooks/{webhookID}"): (200, lambda _: payloads.webhook_detail()),
    ("DELETE", "/events/webhooks/{webhookID}"): (200, None),
}


def template_of(method: str, path: str) -> str | None:
    """The spec's template for a concrete path, or None; the most literal match wins
    (`/sandboxes/metrics` over `/sandboxes/{sandboxID}`)."""
    matches = [
        template
        for answer_method, template in SUCCESS_ANSWERS
        if answer_method == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
    ]
    if not matches:
        return None
    return max(matches, key=lambda template: len(re.sub(r"\{[^}]+\}", "", template)))


def success_answer(request: httpx.Request) -> tuple[int, bytes]:
    """(status, body) of a spec-shaped success answer to `request`; 599 when unknown."""
    template = template_of(request.method, request.url.path)
    if template is None:
        return 599, f"no success answer for {request.method} {request.url.path}".encode()
    status, body = SUCCESS_ANSWERS[(request.method, template)]
    return status, b"" if body is None else json.dumps(body(request)).encode()


def success_response(request: httpx.Request) -> httpx.Response:
    """`success_answer` as an httpx response."""
    status, content = success_answer(request)
    headers = {"Content-Type": "application/json"} if content and status != 599 else {}
    return httpx.Response(status, content=content, headers=headers)
