"""sandboxd's SQLite store answers the API's questions."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from sandboxd.records import SandboxRecord, token_sha256
from sandboxd.store import LogLine, Sample, Store, TeamSample

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_logs_filter_by_level_search_cursor_and_direction(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    for ts_ms, level, message in [
        (1000, "info", "sandbox created"),
        (2000, "debug", "noise"),
        (3000, "error", "OOM kill: python3 (pid 7) killed"),
        (4000, "info", "process 9 exited: exit status 0"),
    ]:
        store.add_log(LogLine("a", ts_ms, level, message, {}))
    store.add_log(LogLine("b", 1500, "error", "OOM kill elsewhere", {}))

    def messages(**query: object) -> list[str]:
        options: dict[str, object] = {
            "cursor_ms": None,
            "limit": 10,
            "forward": True,
            "min_level": None,
            "search": None,
        }
        options.update(query)
        return [line.message for line in store.logs("a", **options)]  # type: ignore[arg-type]

    assert messages() == [
        "sandbox created",
        "noise",
        "OOM kill: python3 (pid 7) killed",
        "process 9 exited: exit status 0",
    ]
    assert messages(min_level="info") == [
        "sandbox created",
        "OOM kill: python3 (pid 7) killed",
        "process 9 exited: exit status 0",
    ]
    assert messages(min_level="error") == ["OOM kill: python3 (pid 7) killed"]
    assert messages(search="OOM") == ["OOM kill: python3 (pid 7) killed"]
    assert messages(search="oom") == []  # case-sensitive, as E2B's
    assert messages(cursor_ms=3000) == [
        "OOM kill: python3 (pid 7) killed",
        "process 9 exited: exit status 0",
    ]
    assert messages(cursor_ms=3000, forward=False, limit=2) == [
        "OOM kill: python3 (pid 7) killed",
        "noise",
    ]
    store.close()


def test_latest_samples_and_range(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.add_samples([Sample("a", ts, 2, 1.0, ts, 1, 0, 0, 1) for ts in (10, 15, 20)])
    store.add_samples([Sample("b", 12, 2, 1.0, 12, 1, 0, 0, 1)])
    latest = store.latest_samples(["a", "b", "c"])
    assert {sid: s.ts_unix_s for sid, s in latest.items()} == {"a": 20, "b": 12}
    assert [s.ts_unix_s for s in store.samples("a", 11, 20)] == [15, 20]
    store.close()


def test_events_page_by_offset_and_type(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    for n, kind in enumerate(["created", "paused", "resumed", "killed"]):
        store.add_event(
            {
                "id": str(n),
                "sandboxId": "a",
                "type": f"sandbox.lifecycle.{kind}",
                "timestamp": "2026-11-26T10:00:00Z",
            }
        )
    newest_first = [e["id"] for e in store.events("a", [], 0, 10, False)]
    assert newest_first == ["3", "2", "1", "0"]
    assert [e["id"] for e in store.events(None, [], 1, 2, True)] == ["1", "2"]
    killed = store.events(None, ["sandbox.lifecycle.killed"], 0, 10, False)
    assert [e["id"] for e in killed] == ["3"]
    store.close()


def test_retention_forgets_old_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.add_samples([Sample("a", ts, 2, 1.0, 1, 1, 0, 0, 1) for ts in (100, 200)])
    store.add_team_sample(TeamSample(100, 1, 0.0))
    store.add_log(LogLine("a", 100_000, "info", "old", {}))
    store.add_event({"id": "e", "sandboxId": "a", "type": "t", "timestamp": "1970-01-01T00:01:40Z"})
    store.forget_before(150)
    assert [s.ts_unix_s for s in store.samples("a", None, None)] == [200]
    assert store.team_samples(0, 1000) == []
    assert store.logs("a", None, 10, True, None, None) == []
    assert store.events(None, [], 0, 10, True) == []
    store.close()


def test_the_store_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite3").write_text("")  # left readable by an older run
    (tmp_path / "s.sqlite3").chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        store = Store(tmp_path / "s.sqlite3")
        store.add_log(LogLine("a", 1, "info", "x", {}))
    finally:
        os.umask(old_umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    store.close()

    assert "s.sqlite3-wal" in modes
    assert set(modes.values()) == {0o600}, modes


def test_a_token_stored_in_clear_by_an_older_run_is_replaced_by_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    old = Store(path)
    old.save_sandbox("sbx", {"sandbox_id": "sbx", "access_token": "cleartoken123"}, "killed")
    old.close()

    store = Store(path)
    record, _ = store.sandbox("sbx") or ({}, "")
    store.close()

    assert record == {"sandbox_id": "sbx", "access_token_sha256": token_sha256("cleartoken123")}
    assert not any(b"cleartoken123" in p.read_bytes() for p in tmp_path.iterdir())


def test_a_record_goes_to_the_store_with_its_token_hashed() -> None:
    record = SandboxRecord(
        "sbx", "t", "small", "b", 1, 128, 512, NOW, NOW, access_token="tok-9f3e2d", secure=False
    )

    stored = record.to_json()
    back = SandboxRecord.from_json(stored)

    assert "tok-9f3e2d" not in json.dumps(stored)
    assert stored["access_token_sha256"] == token_sha256("tok-9f3e2d")
    assert back.access_token is None and back.access_token_sha256 == token_sha256("tok-9f3e2d")
    assert record.created()["envdAccessToken"] == "tok-9f3e2d"
