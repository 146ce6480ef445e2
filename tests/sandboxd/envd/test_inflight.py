"""Per-box limits on envd requests in flight (sandboxd/envd/inflight.py)."""

from __future__ import annotations

from sandboxd.envd.inflight import InFlightLimits, kind_of


def test_a_box_at_its_limit_is_refused_and_a_release_makes_room() -> None:
    limits = InFlightLimits(max_calls=2, max_streams=5)
    first, second = limits.take("box", "call"), limits.take("box", "call")

    assert first is not None and second is not None
    assert limits.take("box", "call") is None
    first.release()
    first.release()  # twice counts once
    assert limits.in_flight("box", "call") == 1
    assert limits.take("box", "call") is not None


def test_streams_and_calls_and_boxes_are_counted_apart() -> None:
    limits = InFlightLimits(max_calls=1, max_streams=1)
    assert limits.take("box", "stream") is not None

    assert limits.take("box", "stream") is None
    assert limits.take("box", "call") is not None
    assert limits.take("other", "stream") is not None


def test_a_box_with_nothing_in_flight_leaves_no_count_behind() -> None:
    limits = InFlightLimits()
    slot = limits.take("box", "call")
    assert slot is not None
    slot.release()

    assert limits.in_flight("box", "call") == 0
    assert limits._counts == {}


def test_only_process_streams_count_as_streams() -> None:
    assert kind_of("process.Process", "Start") == "stream"
    assert kind_of("process.Process", "StreamInput") == "stream"
    assert kind_of("process.Process", "SendInput") == "call"
    assert kind_of("filesystem.Filesystem", "ListDir") == "call"
