"""OOM incidents and the log lines kept around them."""

from __future__ import annotations

import pytest

from storage import MonitorStore
from storage.rows import IncidentRow, LogLineRow
from tests.storage.rowmaker import GIB, T0, at, sandbox


def test_sandbox_incidents_of_one_sandbox_oldest_first(store: MonitorStore) -> None:
    store.upsert_sandboxes([sandbox("a", template_id="big")])

    def incident(sandbox_id: str, s: int, kind: str = "oom_confirmed") -> IncidentRow:
        return IncidentRow(sandbox_id, kind, at(s), at(s + 1), "python", 7, GIB, GIB, "log")  # type: ignore[arg-type]

    store.add_incidents([incident("a", 50), incident("b", 10), incident("a", 20, "oom_suspected")])
    got = store.sandbox_incidents("a")
    assert list(got.columns) == list(store.incidents_since(T0).columns)
    assert got["occurred_at"].tolist() == [at(20), at(50)]
    assert got["kind"].tolist() == ["oom_suspected", "oom_confirmed"]
    assert got["template_id"].tolist() == ["big", "big"]
    assert store.sandbox_incidents("none").empty


def test_logs_around_a_time(store: MonitorStore) -> None:
    lines = [LogLineRow("a", at(s), "info", f"line {s}", "{}") for s in range(10)]
    store.add_log_lines([*lines, LogLineRow("b", at(5), "info", "other", "{}")])
    got = store.logs_around("a", at(5), before=3, after=2)
    assert list(got.columns) == ["ts", "level", "message", "fields_json"]
    assert got["message"].tolist() == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    with pytest.raises(ValueError, match="limit"):
        store.logs_around("a", at(5), before=-1, after=2)


def test_logs_between_keeps_the_newest_lines_in_time_order(store: MonitorStore) -> None:
    store.add_log_lines(
        [LogLineRow("a", at(s), "info", f"line {s}", "{}") for s in range(10)]
        + [LogLineRow("b", at(5), "info", "other", "{}")]
    )
    got = store.logs_between("a", at(2), at(8), limit=3)
    assert list(got.columns) == ["ts", "level", "message", "fields_json"]
    assert got["message"].tolist() == ["line 5", "line 6", "line 7"]  # [start, end)
    assert len(store.logs_between("a", T0, at(100))) == 10
    assert store.logs_between("a", at(100), at(200)).empty
