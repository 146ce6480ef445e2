"""Every E2B action, as a generator that a client runs: `client.run(get_sandbox("id"))`."""

from e2bapi.actions.events import sandbox_events, team_events
from e2bapi.actions.extend import ExtendOutcome, extend_sandbox
from e2bapi.actions.health import check_health
from e2bapi.actions.logs import sandbox_logs
from e2bapi.actions.metrics import sandbox_metrics, sandboxes_metrics, team_max_metric, team_metrics
from e2bapi.actions.sandboxes import (
    connect_sandbox,
    create_sandbox,
    get_sandbox,
    kill_sandbox,
    list_sandboxes,
    pause_sandbox,
    refresh_sandbox,
    set_sandbox_timeout,
)
from e2bapi.actions.templates import (
    create_template,
    get_template,
    list_templates,
    start_template_build,
    template_build_status,
    template_by_alias,
    template_files_upload,
    template_tags,
    update_template,
)
from e2bapi.actions.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    list_webhooks,
    update_webhook,
)

__all__ = [
    "ExtendOutcome",
    "check_health",
    "connect_sandbox",
    "create_sandbox",
    "create_template",
    "create_webhook",
    "delete_webhook",
    "extend_sandbox",
    "get_sandbox",
    "get_template",
    "get_webhook",
    "kill_sandbox",
    "list_sandboxes",
    "list_templates",
    "list_webhooks",
    "pause_sandbox",
    "refresh_sandbox",
    "sandbox_events",
    "sandbox_logs",
    "sandbox_metrics",
    "sandboxes_metrics",
    "set_sandbox_timeout",
    "start_template_build",
    "team_events",
    "team_max_metric",
    "team_metrics",
    "template_build_status",
    "template_by_alias",
    "template_files_upload",
    "template_tags",
    "update_template",
    "update_webhook",
]
