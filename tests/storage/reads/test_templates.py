"""The template catalog: each listing replaces the last, whole, and reads back as listed."""

from __future__ import annotations

from storage import MonitorStore
from storage.rows import TemplateRow
from tests.storage.rowmaker import at


def template(
    template_id: str, names: list[str], listed_s: float = 0, **changes: object
) -> TemplateRow:
    fields: dict[str, object] = {
        "template_id": template_id,
        "build_id": f"{template_id}-build",
        "names": names,
        "aliases": names,
        "cpu_count": 2,
        "memory_mb": 512,
        "disk_size_mb": 2048,
        "public": False,
        "build_count": 3,
        "build_status": "ready",
        "spawn_count": 7,
        "last_spawned_at": None,
        "created_at": at(-3600),
        "updated_at": at(-60),
        "envd_version": "0.2.0",
        "listed_at": at(listed_s),
    }
    fields.update(changes)
    return TemplateRow(**fields)  # type: ignore[arg-type]


def test_a_listing_reads_back_by_name(store: MonitorStore) -> None:
    assert store.template_catalog().empty
    assert store.templates_listed_at() is None
    written = store.replace_templates(
        [
            template("t-zeta", ["zeta"], spawn_count=12, last_spawned_at=at(-5)),
            template("t-alpha", ["alpha", "team/alpha"], public=True, build_status="error"),
        ]
    )
    assert written == 2
    catalog = store.template_catalog()
    assert catalog["template_id"].tolist() == ["t-alpha", "t-zeta"]
    alpha, zeta = catalog.to_dict("records")
    assert list(alpha["names"]) == ["alpha", "team/alpha"]
    assert (alpha["public"], alpha["build_status"]) == (True, "error")
    assert zeta["spawn_count"] == 12 and zeta["last_spawned_at"] == at(-5)
    assert store.templates_listed_at() == at(0)


def test_a_new_listing_replaces_the_old_one(store: MonitorStore) -> None:
    store.replace_templates([template("t-old", ["old"]), template("t-kept", ["kept"])])
    store.replace_templates([template("t-kept", ["kept"], 10, memory_mb=1024)])
    catalog = store.template_catalog()
    assert catalog["template_id"].tolist() == ["t-kept"]  # the deleted one is gone
    assert int(catalog["memory_mb"].iloc[0]) == 1024
    assert store.replace_templates([]) == 0
    assert store.template_catalog().empty


def test_a_template_listed_twice_is_stored_once(store: MonitorStore) -> None:
    store.replace_templates([template("t-1", ["one"]), template("t-1", ["one"], memory_mb=2048)])
    catalog = store.template_catalog()
    assert len(catalog) == 1 and int(catalog["memory_mb"].iloc[0]) == 2048
