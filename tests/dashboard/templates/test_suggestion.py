"""The suggested memory size and its evidence, from fit rows with known numbers, and the
note on a cut-off table."""

from __future__ import annotations

import math

from dashboard.templates.data import MAX_GROUPS, cut_off_text
from dashboard.templates.suggestion import suggest_memory

MIB = 2**20


def test_the_p99_peak_plus_a_quarter_rounded_up_to_an_e2b_size() -> None:
    got = suggest_memory(
        {
            "mem_peak_p99_bytes": 400 * MIB,
            "sandboxes_sampled": 9,
            "memory_mb": 2048,
            "oom_incidents": 0,
        }
    )
    assert got.memory_mb == 512  # 500 MiB needed: smaller than the 2048 allotted
    assert got.evidence == "p99 peak 400 MiB of 9 sampled + 25 %"


def test_a_confirmed_oom_asks_for_more_than_the_current_limit() -> None:
    got = suggest_memory(
        {
            "mem_peak_p99_bytes": 300 * MIB,
            "sandboxes_sampled": 4,
            "memory_mb": 512,
            "oom_incidents": 2,
        }
    )
    assert got.memory_mb == 1024  # 512 + 25 % = 640 MiB
    assert "2 confirmed OOM kills, so at least 512 MiB + 25 %" in got.evidence


def test_no_suggestion_without_samples_or_past_the_largest_size() -> None:
    assert (
        suggest_memory({"mem_peak_p99_bytes": math.nan, "sandboxes_sampled": 0}).memory_mb is None
    )
    too_big = suggest_memory(
        {
            "mem_peak_p99_bytes": 8000 * MIB,
            "sandboxes_sampled": 1,
            "memory_mb": 8192,
            "oom_incidents": 0,
        }
    )
    assert too_big.memory_mb is None and "more than the largest size" in too_big.evidence


def test_the_page_says_when_only_the_biggest_groups_are_shown() -> None:
    assert cut_off_text(MAX_GROUPS - 1) is None
    assert (
        cut_off_text(MAX_GROUPS)
        == f"Only the {MAX_GROUPS} groups with the most sandboxes are shown."
    )
