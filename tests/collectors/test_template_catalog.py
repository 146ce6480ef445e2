"""The slow job lists the team's templates from a real sandboxd into the catalog table,
with the spawn counts the API gives, and a template that leaves the list leaves the catalog."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collectors import templates
from collectors.scheduler import Collector
from e2bapi import actions
from e2bapi.models.templates import Template
from storage.rows import TemplateRow
from tests.collectors.conftest import MakeCollector
from tests.collectors.helpers import wait_for
from tests.e2bapi import payloads


def _catalog(collector: Collector) -> dict[str, dict[str, Any]]:
    frame = collector.context.store.template_catalog()
    return {str(row["template_id"]): row for row in frame.to_dict("records")}


def test_the_slow_job_stores_every_listed_template(
    make_collector: MakeCollector, new_sandbox: Callable[..., str]
) -> None:
    new_sandbox("small")
    collector = make_collector()
    listed = collector.context.client.run(actions.list_templates())
    collector.start()

    def small_spawned() -> dict[str, dict[str, Any]] | None:
        catalog = _catalog(collector)
        small = catalog.get("small")
        return catalog if small is not None and int(small["spawn_count"]) >= 1 else None

    catalog = wait_for(small_spawned, 15, "the catalog with the small template's spawn")
    runs = collector.context.store.data_freshness(datetime.now(UTC)).set_index("job")
    collector.stop()  # closes the store
    assert set(catalog) == {t.template_id for t in listed}
    small = catalog["small"]
    assert (small["memory_mb"], small["cpu_count"], small["build_status"]) == (128, 1, "ready")
    assert list(small["names"]) == ["small"]
    assert runs.loc["slow", "last_error"] is None


def test_template_rows_keep_what_the_api_listed() -> None:
    listed = Template.model_validate(payloads.template())
    at = datetime(2026, 12, 1, tzinfo=UTC)
    (row,) = templates.template_rows([listed], at)
    assert isinstance(row, TemplateRow)
    assert (row.template_id, row.memory_mb, row.build_count) == (
        listed.template_id,
        listed.memory_mb,
        listed.build_count,
    )
    assert row.names == listed.names and row.listed_at == at
