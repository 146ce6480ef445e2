"""The template catalog: the team's templates (`GET /v2/templates`, every page) into the
store's `templates` table, replaced whole on each listing. Run by the slow job (every
`slow_interval_s`, 60 s by default): templates change at a person's pace, not a sample's."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from collectors.context import JobContext
from e2bapi import actions
from e2bapi.errors import NotFoundError
from e2bapi.models.templates import Template
from storage.rows import TemplateRow

log = logging.getLogger(__name__)


def template_rows(templates: Sequence[Template], listed_at: datetime) -> list[TemplateRow]:
    """The rows of one listing, stamped `listed_at`."""
    return [
        TemplateRow(
            template_id=t.template_id,
            build_id=t.build_id,
            names=list(t.names),
            aliases=list(t.aliases),
            cpu_count=t.cpu_count,
            memory_mb=t.memory_mb,
            disk_size_mb=t.disk_size_mb,
            public=t.public,
            build_count=t.build_count,
            build_status=t.build_status,
            spawn_count=t.spawn_count,
            last_spawned_at=t.last_spawned_at,
            created_at=t.created_at,
            updated_at=t.updated_at,
            envd_version=t.envd_version,
            listed_at=listed_at,
        )
        for t in templates
    ]


def collect_catalog(ctx: JobContext, now: datetime) -> None:
    """List the team's templates and make them the stored catalog. An API without the
    list (404) leaves the catalog as it was."""
    try:
        listed = ctx.client.run(actions.list_templates())
    except NotFoundError:
        log.debug("the API has no template list; the catalog is left as it was")
        return
    ctx.wrote(ctx.store.replace_templates(template_rows(listed, now)))
