"""The actions an operator can name on the command line, with the API call each one makes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from e2bapi import actions
from e2bapi.exchange import Exchange


@dataclass(frozen=True)
class ActionEntry:
    """A named action: its factory, the endpoint it calls, and whether it takes the team ID."""

    name: str
    factory: Callable[..., Exchange[Any]]
    endpoint: str

    @property
    def summary(self) -> str:
        """The first line of the factory's docstring."""
        return (self.factory.__doc__ or "").strip().splitlines()[0]

    @property
    def needs_team_id(self) -> bool:
        """Whether the action requires a `team_id`, which the client can fill in."""
        parameter = inspect.signature(self.factory).parameters.get("team_id")
        return parameter is not None and parameter.default is inspect.Parameter.empty


CATALOG: tuple[ActionEntry, ...] = (
    ActionEntry("health", actions.check_health, "GET /health"),
    ActionEntry("create-sandbox", actions.create_sandbox, "POST /sandboxes"),
    ActionEntry("get-sandbox", actions.get_sandbox, "GET /sandboxes/{sandboxID}"),
    ActionEntry("list-sandboxes", actions.list_sandboxes, "GET /v2/sandboxes"),
    ActionEntry("pause-sandbox", actions.pause_sandbox, "POST /sandboxes/{sandboxID}/pause"),
    ActionEntry("connect-sandbox", actions.connect_sandbox, "POST /sandboxes/{sandboxID}/connect"),
    ActionEntry("kill-sandbox", actions.kill_sandbox, "DELETE /sandboxes/{sandboxID}"),
    ActionEntry("set-timeout", actions.set_sandbox_timeout, "POST /sandboxes/{sandboxID}/timeout"),
    ActionEntry(
        "refresh-sandbox", actions.refresh_sandbox, "POST /sandboxes/{sandboxID}/refreshes"
    ),
    ActionEntry(
        "extend-sandbox", actions.extend_sandbox, "GET + POST .../connect (never shortens)"
    ),
    ActionEntry("sandbox-logs", actions.sandbox_logs, "GET /v2/sandboxes/{sandboxID}/logs"),
    ActionEntry("sandbox-metrics", actions.sandbox_metrics, "GET /sandboxes/{sandboxID}/metrics"),
    ActionEntry("sandboxes-metrics", actions.sandboxes_metrics, "GET /sandboxes/metrics"),
    ActionEntry("sandbox-events", actions.sandbox_events, "GET /events/sandboxes/{sandboxID}"),
    ActionEntry("team-events", actions.team_events, "GET /events/sandboxes"),
    ActionEntry("team-metrics", actions.team_metrics, "GET /teams/{teamID}/metrics"),
    ActionEntry("team-max-metric", actions.team_max_metric, "GET /teams/{teamID}/metrics/max"),
    ActionEntry("list-templates", actions.list_templates, "GET /v2/templates"),
    ActionEntry("create-template", actions.create_template, "POST /v3/templates"),
    ActionEntry(
        "template-files-upload",
        actions.template_files_upload,
        "GET /templates/{templateID}/files/{hash}",
    ),
    ActionEntry(
        "start-template-build",
        actions.start_template_build,
        "POST /v2/templates/{templateID}/builds/{buildID}",
    ),
    ActionEntry(
        "template-build-status",
        actions.template_build_status,
        "GET /templates/{templateID}/builds/{buildID}/status",
    ),
    ActionEntry("update-template", actions.update_template, "PATCH /v2/templates/{templateID}"),
    ActionEntry("create-webhook", actions.create_webhook, "POST /events/webhooks"),
    ActionEntry("list-webhooks", actions.list_webhooks, "GET /events/webhooks"),
    ActionEntry("get-webhook", actions.get_webhook, "GET /events/webhooks/{webhookID}"),
    ActionEntry("update-webhook", actions.update_webhook, "PATCH /events/webhooks/{webhookID}"),
    ActionEntry("delete-webhook", actions.delete_webhook, "DELETE /events/webhooks/{webhookID}"),
)

ACTIONS_BY_NAME = {entry.name: entry for entry in CATALOG}
