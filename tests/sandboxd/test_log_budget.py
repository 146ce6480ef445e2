"""The per-sandbox log budget (sandboxd/log_budget.py) and how the journal spends it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sandboxd.agent.messages import End, ProcessEnded, ProcessStarted
from sandboxd.isolation.base import OomKill
from sandboxd.journal import Journal
from sandboxd.log_budget import (
    MAX_MESSAGE_CHARS,
    TRUNCATED_MARKER,
    LogBudget,
    clipped,
)
from sandboxd.records import SandboxRecord
from sandboxd.store import LogLine, Store


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_the_burst_is_kept_then_lines_are_dropped_and_counted() -> None:
    clock = FakeClock()
    budget = LogBudget(lines_per_s=2.0, burst_lines=5, clock=clock)

    kept = [budget.take("box") for _ in range(5)]
    over = [budget.take("box") for _ in range(3)]

    assert kept == [0, 0, 0, 0, 0]
    assert over == [None, None, None]


def test_the_rate_refills_and_the_next_kept_line_reports_the_dropped_count() -> None:
    clock = FakeClock()
    budget = LogBudget(lines_per_s=2.0, burst_lines=5, clock=clock)
    for _ in range(5 + 4):  # the burst, then 4 dropped
        budget.take("box")

    clock.now_s += 0.25  # half a token: still over
    assert budget.take("box") is None
    clock.now_s += 0.25  # a whole token now
    assert budget.take("box") == 5  # the report comes once, with the line that fits
    clock.now_s += 0.5
    assert budget.take("box") == 0


def test_refill_stops_at_the_burst() -> None:
    clock = FakeClock()
    budget = LogBudget(lines_per_s=10.0, burst_lines=3, clock=clock)
    budget.take("box")
    clock.now_s += 3600.0

    kept = [budget.take("box") for _ in range(5)]

    assert kept == [0, 0, 0, None, None]


def test_each_sandbox_has_its_own_bucket() -> None:
    budget = LogBudget(lines_per_s=1.0, burst_lines=2, clock=FakeClock())
    for _ in range(5):
        budget.take("noisy")

    assert budget.take("quiet") == 0
    assert budget.take("noisy") is None


def test_settle_returns_the_unreported_count_and_forgets_the_sandbox() -> None:
    budget = LogBudget(lines_per_s=1.0, burst_lines=1, clock=FakeClock())
    for _ in range(4):
        budget.take("box")

    assert budget.settle("box") == 3
    assert budget.settle("box") == 0
    assert budget.take("box") == 0  # a fresh bucket


def test_long_text_is_clipped_with_a_marker() -> None:
    assert clipped("short", 10) == "short"
    long = clipped("x" * 100, 40)
    assert len(long) == 40
    assert long.endswith(TRUNCATED_MARKER)


def _journal(tmp_path: Path, budget: LogBudget) -> tuple[Journal, Store, SandboxRecord]:
    store = Store(tmp_path / "sandboxd.sqlite")
    now = datetime.now(UTC)
    journal = Journal(store, "team", lambda: now, budget)
    record = SandboxRecord("box", "base", "base", "build", 1, 128, 512, now, now, isolation="full")
    return journal, store, record


def _lines(store: Store) -> list[LogLine]:
    return store.logs("box", None, 1000, True, None, None)


def _start_and_end(journal: Journal, record: SandboxRecord, pid: int) -> None:
    journal.process_event(record, ProcessStarted(pid=pid, cmd="true", args=[], tag=None))
    end = End(exit_code=0, exited=True, status="exit status 0")
    journal.process_event(record, ProcessEnded(pid=pid, cmd="true", end=end))


def test_the_journal_drops_process_lines_over_budget_and_reports_them(tmp_path: Path) -> None:
    clock = FakeClock()
    journal, store, record = _journal(tmp_path, LogBudget(1.0, 4, clock))
    for pid in range(1, 11):  # 20 lines: 4 kept, 16 dropped
        _start_and_end(journal, record, pid)
    clock.now_s += 1.0
    _start_and_end(journal, record, 11)  # the start fits, the end is dropped

    messages = [line.message for line in _lines(store)]

    assert len(messages) == 4 + 2
    assert messages[4] == "16 log lines dropped (over 1 lines/s)"
    assert messages[5] == "process 11 started: true"


def test_sandboxd_s_own_lines_are_never_dropped_and_the_end_reports_the_rest(
    tmp_path: Path,
) -> None:
    journal, store, record = _journal(tmp_path, LogBudget(1.0, 2, FakeClock()))
    for pid in range(1, 6):  # 10 lines: 2 kept, 8 dropped
        _start_and_end(journal, record, pid)
    journal.oom_kill(record, OomKill("box", datetime.now(UTC), 7, "x", 128 * 2**20))
    journal.ended(record, "oom", failed=True)

    messages = [line.message for line in _lines(store)]

    assert messages[2].startswith("OOM kill: x (pid 7) killed")
    assert messages[3:] == ["8 log lines dropped (over 1 lines/s)", "sandbox ended: oom"]


def test_a_huge_command_line_is_stored_clipped(tmp_path: Path) -> None:
    journal, store, record = _journal(tmp_path, LogBudget(clock=FakeClock()))
    started = ProcessStarted(pid=3, cmd="echo", args=["y" * 1_000_000], tag=None)
    journal.process_event(record, started)

    (line,) = _lines(store)

    assert len(line.message) == MAX_MESSAGE_CHARS
    assert line.message.endswith(TRUNCATED_MARKER)
    assert line.fields["cmd"].endswith(TRUNCATED_MARKER)
    assert len(line.fields["cmd"]) < 10_000
