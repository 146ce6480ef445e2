"""The pure parts of scheduling: backoff, backfill windows, and the work lists jobs share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collectors.backfill import windows
from collectors.scheduler import backoff_s
from collectors.work import BackfillQueue, Gap, LogSweep, Trouble, TroubleWatch

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("failures", "retry_after_s", "expected_s"),
    [
        (1, None, 5),  # the next tick
        (2, None, 10),
        (3, None, 20),
        (6, None, 60),  # capped
        (1, 30.0, 30),  # the server's Retry-After wins
        (4, 2.0, 5),  # never sooner than the interval
    ],
)
def test_backoff_doubles_per_failure_up_to_the_cap_or_follows_retry_after(
    failures: int, retry_after_s: float | None, expected_s: float
) -> None:
    assert backoff_s(5.0, failures, retry_after_s, 60.0) == expected_s


def test_a_long_interval_is_its_own_cap() -> None:
    assert backoff_s(300.0, 3, None, 60.0) == 300.0


def test_windows_cover_a_gap_in_pieces_under_an_hour() -> None:
    pieces = list(windows(at(0.4), at(2 * 3600 + 10)))

    assert [(start - T0).total_seconds() for start, _ in pieces] == [0.4, 3600.4, 7200.4]
    assert all(end - start < timedelta(hours=1) for start, end in pieces)
    assert pieces[-1][1] == at(2 * 3600 + 10)
    assert list(windows(at(5), at(5))) == [(at(5), at(5))]
    assert list(windows(at(6), at(5))) == []


def test_backfill_gaps_merge_per_sandbox_and_leave_when_taken() -> None:
    queue = BackfillQueue()
    queue.want(Gap("a", at(10), at(20)))
    queue.want(Gap("b", at(0), at(5)))
    queue.want(Gap("a", at(5), at(15)))

    assert queue.take(1) == [Gap("a", at(5), at(20))]
    queue.put_back([Gap("a", at(30), at(40))])
    assert queue.take(5) == [Gap("b", at(0), at(5)), Gap("a", at(30), at(40))]
    assert len(queue) == 0


def test_the_poll_flag_says_whether_the_previous_poll_succeeded() -> None:
    queue = BackfillQueue()

    assert queue.poll_started() is False  # a fresh process: polls were missed
    queue.poll_succeeded()
    assert queue.poll_started() is True
    assert queue.poll_started() is False  # the one before did not get to succeed


def test_memory_high_then_settled_are_two_signs_with_the_rise_time() -> None:
    watch = TroubleWatch()
    for second, high in ((0, False), (5, True), (10, True), (15, False), (20, False)):
        watch.memory_sample("a", at(second), high)

    signs = watch.take(10, history_limit=5)

    assert [(s.kind, s.at, s.high_since) for s in signs] == [
        ("memory_high", at(5), at(5)),
        ("memory_settled", at(15), at(5)),
    ]


def test_an_end_while_high_looks_back_to_the_rise() -> None:
    watch = TroubleWatch()
    watch.memory_sample("a", at(5), True)
    watch.take(10, history_limit=5)
    watch.flag(Trouble("a", "ended", at(9), end_reason=None))

    assert watch.take(10, history_limit=5) == [Trouble("a", "ended", at(9), high_since=at(5))]


def test_a_sign_is_handled_once_even_when_reported_twice() -> None:
    watch = TroubleWatch()
    end = Trouble("a", "ended", at(9), end_reason="oom")
    watch.flag(end)
    watch.flag(end)

    assert watch.take(10, history_limit=5) == [end]
    watch.flag(end)  # the events job reporting the end the poll saw
    assert watch.take(10, history_limit=5) == []
    watch.put_back([end])  # a failed handling comes back
    assert watch.take(10, history_limit=5) == [end]


def test_the_log_sweep_takes_turns_and_moves_its_cursor() -> None:
    sweep = LogSweep(timedelta(minutes=5))
    live = ["c", "a", "b", "d"]

    assert sweep.next_sandboxes(live, 3) == ["a", "b", "c"]
    assert sweep.next_sandboxes(live, 3) == ["d", "a", "b"]
    assert sweep.cursor("a", at(600)) == at(300)
    sweep.advance("a", [at(400), at(401)], page_full=False)
    assert sweep.cursor("a", at(600)) == at(401) + timedelta(milliseconds=1)
    sweep.advance("a", [at(402), at(403)], page_full=True)  # lines may hide at 403
    assert sweep.cursor("a", at(600)) == at(403)
    sweep.next_sandboxes(["b"], 3)  # "a" is gone: its cursor too
    assert sweep.cursor("a", at(600)) == at(300)


def test_the_backfill_queue_survives_a_restart_through_its_json() -> None:
    """Saved before the samples that reveal a gap: a kill -9 in between loses no gap."""
    from datetime import UTC, datetime

    from collectors.work import BackfillQueue, Gap

    queue = BackfillQueue()
    gap = Gap(
        "sbx", datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
    )
    queue.want(gap)
    restarted = BackfillQueue()
    restarted.load_json(queue.to_json())
    assert restarted.take(10) == [gap]
    empty = BackfillQueue()
    empty.load_json(None)
    assert len(empty) == 0
