"""Samples are stamped in whole seconds on a fixed grid: one sample per stamp, no drift."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandboxd.sampler import TICK_OFFSET_S, next_tick_s


@pytest.mark.parametrize(
    ("now_s", "period_s", "tick_s"),
    [
        (12.2, 1.0, 12.5),
        (12.5, 1.0, 13.5),  # a tick just run is not the next one
        (12.503, 1.0, 13.5),
        (17.0, 5.0, 20.5),
        (20.4, 5.0, 20.5),
    ],
)
def test_next_tick(now_s: float, period_s: float, tick_s: float) -> None:
    assert next_tick_s(now_s, period_s) == tick_s


@given(
    now_s=st.floats(min_value=1.7e9, max_value=2.0e9),
    period_s=st.sampled_from([1.0, 2.0, 5.0, 10.0, 60.0]),
)
def test_ticks_sit_on_the_grid_within_one_period(now_s: float, period_s: float) -> None:
    tick_s = next_tick_s(now_s, period_s)
    assert now_s < tick_s <= now_s + period_s
    assert math.isclose((tick_s - TICK_OFFSET_S) % period_s, 0, abs_tol=1e-6)


def test_a_sandbox_s_samples_have_one_stamp_each_a_second_apart(
    api: httpx.Client, new_sandbox: Callable[..., str]
) -> None:
    sandbox_id = new_sandbox()
    time.sleep(4.5)

    stamps = [m["timestampUnix"] for m in api.get(f"/sandboxes/{sandbox_id}/metrics").json()]

    assert len(stamps) >= 3
    assert stamps == sorted(set(stamps))  # ascending, none twice
    steps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert steps.count(1) >= len(steps) - 1  # a tick skips only when the loop was busy
