"""The one fullness rule and the marks the Level column shows."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest

from dashboard.common.levels import (
    CRITICAL_PCT,
    LEVEL_MARKS,
    LEVELS,
    WARN_PCT,
    level_of_pct,
    worst_level,
)


@pytest.mark.parametrize(
    ("pct", "level"),
    [
        (0.0, "ok"),
        (WARN_PCT - 0.01, "ok"),
        (WARN_PCT, "warn"),
        (CRITICAL_PCT - 0.01, "warn"),
        (CRITICAL_PCT, "critical"),
        (250.0, "critical"),
        (None, "ok"),
        (math.nan, "ok"),
    ],
)
def test_a_share_of_a_limit_has_one_level(pct: float | None, level: str) -> None:
    assert level_of_pct(pct) == level


def test_the_worst_share_decides_and_unknown_ones_do_not() -> None:
    assert worst_level(10.0, WARN_PCT, CRITICAL_PCT) == "critical"
    assert worst_level(None, math.nan, WARN_PCT + 1) == "warn"
    assert worst_level(None, math.nan) == "ok"
    assert worst_level() == "ok"


def test_each_level_has_its_own_mark_naming_its_threshold() -> None:
    assert set(LEVEL_MARKS) == set(LEVELS)
    assert len(set(LEVEL_MARKS.values())) == len(LEVELS)
    assert f"{CRITICAL_PCT:g} %" in LEVEL_MARKS["critical"]
    assert f"{WARN_PCT:g} %" in LEVEL_MARKS["warn"]


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig's fc-list is missing")
def test_every_mark_is_drawn_by_a_font_on_this_machine() -> None:
    # Debian's chromium has no emoji font: an emoji mark reads as an empty box. fontconfig
    # picks the fonts chromium draws with, so every character must be in one it lists.
    for mark in LEVEL_MARKS.values():
        for char in set(mark) - {" "}:
            fonts = subprocess.run(
                ["fc-list", f":charset={ord(char):x}", "family"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            assert fonts.strip(), f"no font on this machine draws {char!r} of {mark!r}"
