"""One typical invocation of every action in the catalog, for tests that sweep them all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from e2bapi import actions
from e2bapi.exchange import Exchange
from e2bapi.models.sandboxes import NewSandbox
from e2bapi.models.templates import TemplateBuildRequestV3, TemplateBuildStartV2, TemplateStep
from e2bapi.models.webhooks import WebhookConfiguration, WebhookCreate
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
            signature_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        )
    ),
    "list-webhooks": lambda: actions.list_webhooks(),
    "get-webhook": lambda: actions.get_webhook(WEBHOOK_ID),
    "update-webhook": lambda: actions.update_webhook(
        WEBHOOK_ID, WebhookConfiguration(enabled=False)
    ),
    "delete-webhook": lambda: actions.delete_webhook(WEBHOOK_ID),
}
