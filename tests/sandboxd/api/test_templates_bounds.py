"""What templates keep on disk stays bounded: uploads (oldest go past a count or a total),
layers per template (oldest that no build ends on go, with their files), and a template's
layers are its own, whatever another template with the same steps does."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandboxd.store import Store
from sandboxd.templates import catalog as catalog_module
from sandboxd.templates import files as files_module
from sandboxd.templates.catalog import TemplateCatalog
from sandboxd.templates.files import ContextFiles
from sandboxd.templates.records import LayerEntry, StepState


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _upload(files: ContextFiles, index: int, size: int, mtime_s: float) -> Path:
    files_hash = f"{index:064x}"
    asyncio.run(files.receive(files_hash, _once(b"x" * size)))
    path = files.path(files_hash)
    os.utime(path, (mtime_s, mtime_s))
    return path


def test_uploads_past_the_count_lose_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "MAX_KEPT_FILES", 3)
    files = ContextFiles(tmp_path, max_bytes=1000)
    paths = [_upload(files, i, 10, 1_000_000 + i) for i in range(3)]

    newest = _upload(files, 99, 10, 2_000_000)

    assert [p.exists() for p in paths] == [False, True, True]
    assert newest.exists()


def test_uploads_past_the_total_lose_the_oldest(tmp_path: Path) -> None:
    files = ContextFiles(tmp_path, max_bytes=100)  # keeps at most 4 x 100 bytes
    old = [_upload(files, i, 100, 1_000_000 + i) for i in range(4)]

    newest = _upload(files, 50, 100, 2_000_000)

    assert [p.exists() for p in old] == [False, True, True, True]
    assert newest.exists()


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _layer(catalog: TemplateCatalog, template_id: str, key: str) -> Path:
    name = f"{key}.tar"
    (catalog.layers_dir / name).write_bytes(b"layer")
    catalog.add_layer(LayerEntry(key, template_id, name, StepState()))
    return catalog.layers_dir / name


def test_layers_past_the_count_lose_the_oldest_that_no_build_ends_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "MAX_LAYERS_PER_TEMPLATE", 2)
    catalog = TemplateCatalog(Store(tmp_path / "s.db"), tmp_path / "layers", 10, _Clock())
    template, build, _ = catalog.request_build("bounded", [], 1, 256, 1024)
    ended_on = _layer(catalog, template.template_id, "a" * 64)
    build.layer_key = "a" * 64
    dropped = _layer(catalog, template.template_id, "b" * 64)
    _layer(catalog, template.template_id, "c" * 64)

    newest = _layer(catalog, template.template_id, "d" * 64)

    assert ended_on.exists() and newest.exists()
    assert not dropped.exists() and "b" * 64 not in catalog.layers
    reopened = TemplateCatalog(Store(tmp_path / "s.db"), tmp_path / "layers", 10, _Clock())
    assert set(reopened.layers) == {"a" * 64, "c" * 64, "d" * 64}


def test_deleting_a_template_leaves_another_s_layer_files(tmp_path: Path) -> None:
    catalog = TemplateCatalog(Store(tmp_path / "s.db"), tmp_path / "layers", 10, _Clock())
    kept, _, _ = catalog.request_build("kept", [], 1, 256, 1024)
    gone, _, _ = catalog.request_build("gone", [], 1, 256, 1024)
    kept_file = _layer(catalog, kept.template_id, "e" * 64)
    gone_file = _layer(catalog, gone.template_id, "f" * 64)
    # A layer of `gone` that reuses `kept`'s file (an ENV step on top of it, say).
    catalog.add_layer(LayerEntry("0" * 64, gone.template_id, kept_file.name, StepState()))

    catalog.delete(gone)

    assert kept_file.exists() and not gone_file.exists()
    assert set(catalog.layers) == {"e" * 64}
