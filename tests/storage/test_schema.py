"""Opening a file: migrations run once, a newer file is refused, DuckDB errors are wrapped."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from storage import MonitorStore, StoreError, StoreInUseError, StoreTooNewError, schema
from storage.schema import LATEST_VERSION, MIGRATIONS
from tests.storage.rowmaker import T0


def _versions(path: Path) -> list[tuple[int, str]]:
    con = duckdb.connect(str(path))
    try:
        rows = con.execute("SELECT version, summary FROM schema_version ORDER BY version")
        return [(int(v), str(s)) for v, s in rows.fetchall()]
    finally:
        con.close()


def test_open_creates_parents_and_applies_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "monitor.duckdb"
    MonitorStore.open(path).close()
    MonitorStore.open(path).close()

    assert _versions(path) == [(m.version, m.summary) for m in MIGRATIONS]
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_a_file_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    MonitorStore.open(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO schema_version VALUES (?, 'from the future', now())", [LATEST_VERSION + 1]
    )
    con.close()

    with pytest.raises(StoreTooNewError) as raised:
        MonitorStore.open(path)

    assert raised.value.file_version == LATEST_VERSION + 1
    assert raised.value.known_version == LATEST_VERSION
    assert str(path) in str(raised.value)
    assert "newer sandscope" in str(raised.value)
    assert _versions(path)[-1][0] == LATEST_VERSION + 1
    # Refusing released the file: it can be opened again by anyone.
    duckdb.connect(str(path)).close()


def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    path.write_bytes(b"not a duckdb file" * 1000)

    with pytest.raises(StoreError) as raised:
        MonitorStore.open(path)

    assert type(raised.value) is StoreError
    assert str(path) in str(raised.value)


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = MonitorStore.open(tmp_path / "monitor.duckdb")
    store.close()
    store.close()  # idempotent

    with pytest.raises(StoreError, match="closed"):
        store.live_sandbox_ids()
    with pytest.raises(StoreError, match="closed"):
        store.save_snapshot("templates", "[]", T0)


def test_the_same_file_cannot_be_opened_twice_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "monitor.duckdb"
    with MonitorStore.open(path):
        with pytest.raises(StoreInUseError) as raised:
            MonitorStore.open(tmp_path / "." / "monitor.duckdb")
        assert raised.value.pid == os.getpid()
    MonitorStore.open(path).close()  # free again once closed


def test_migration_2_gives_rolled_up_minutes_their_vcpu_totals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "monitor.duckdb"
    with monkeypatch.context() as m:  # a file as the first release left it
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
        m.setattr(schema, "LATEST_VERSION", 1)
        MonitorStore.open(path).close()
    con = duckdb.connect(str(path))
    minutes = [T0 + timedelta(minutes=k) for k in range(3)]
    for k, minute in enumerate(minutes):
        for sandbox_id, vcpus in (("a", 2), ("b", 4))[: k + 1]:
            con.execute(
                "INSERT INTO samples_1m VALUES (?, ?, 12, ?, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)",
                [sandbox_id, minute, vcpus],
            )
        con.execute("INSERT INTO team_1m VALUES (?, ?, 1, 1, 1, 1, 1, 1, 1)", [minute, k + 1])
    con.close()

    with MonitorStore.open(path) as store, store._reading() as cur:
        rows = cur.execute(
            "SELECT minute, sandboxes, cpu_total_vcpus FROM team_1m ORDER BY minute"
        ).fetchall()
        nullable = cur.execute(
            "SELECT is_nullable FROM information_schema.columns"
            " WHERE table_name = 'team_1m' AND column_name = 'cpu_total_vcpus'"
        ).fetchone()
    assert rows == [(minutes[0], 1, 2), (minutes[1], 2, 6), (minutes[2], 3, 6)]
    assert nullable == ("NO",)
    assert _versions(path)[1] == (2, MIGRATIONS[1].summary)
