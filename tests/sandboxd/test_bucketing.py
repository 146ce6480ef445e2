"""Long ranges come as per-bucket maxima with E2B's steps."""

from __future__ import annotations

import pytest

from sandboxd.bucketing import bucket_maxima, step_for_range_s
from sandboxd.store import Sample


def sample(ts_unix_s: int, cpu_pct: float, mem_bytes: int) -> Sample:
    return Sample("s", ts_unix_s, 2, cpu_pct, mem_bytes, 1000, 0, 0, 100)


@pytest.mark.parametrize(
    ("range_s", "step_s"),
    [
        (600, 5),
        (3599, 5),
        (3600, 30),
        (6 * 3600, 60),
        (12 * 3600, 120),
        (24 * 3600, 300),
        (7 * 24 * 3600, 900),
    ],
)
def test_step_follows_e2b(range_s: int, step_s: int) -> None:
    assert step_for_range_s(range_s) == step_s


def test_each_bucket_keeps_the_maximum_of_each_gauge_not_the_mean() -> None:
    samples = [
        sample(1000, 10, 500),
        sample(1005, 90, 100),
        sample(1010, 20, 900),
        sample(1030, 5, 50),
    ]
    buckets = bucket_maxima(samples, 1000, 30)
    assert [(b.ts_unix_s, b.cpu_used_pct, b.mem_used_bytes) for b in buckets] == [
        (1000, 90, 900),
        (1030, 5, 50),
    ]


def test_five_second_steps_pass_samples_unchanged() -> None:
    samples = [sample(1000, 10, 500), sample(1005, 90, 100)]
    assert bucket_maxima(samples, 1000, 5) == samples
