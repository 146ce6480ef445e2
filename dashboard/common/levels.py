"""The one fullness rule: how full a sandbox is, as a level, and how the level reads.

A share of a limit at or over `WARN_PCT` is "warn", at or over `CRITICAL_PCT` "critical".
The triage table judges CPU, memory and disk by it and shows the level as a mark. Marks are
plain geometric shapes (DejaVu Sans has them), not emoji: Debian's chromium has no emoji font
and draws an emoji as an empty box.
"""

from __future__ import annotations

import math
from typing import Literal

Level = Literal["critical", "warn", "ok"]

# 70 % leaves room to act (extend, resize) before a limit bites; at 90 % the next burst
# of memory or disk hits it (an OOM kill, a full disk), so act now.
WARN_PCT = 70.0
CRITICAL_PCT = 90.0

LEVELS: tuple[Level, ...] = ("critical", "warn", "ok")
"""Worst first: the triage table's order."""

LEVEL_MARKS: dict[Level, str] = {
    "critical": f"▲ {CRITICAL_PCT:g} % or more",
    "warn": f"△ {WARN_PCT:g} % or more",
    "ok": f"· under {WARN_PCT:g} %",
}
"""Each level as the Level column shows it."""


def level_of_pct(pct: float | None) -> Level:
    """The level of one share of a limit (0..100); "ok" when unknown (None or NaN)."""
    if pct is None or math.isnan(float(pct)):
        return "ok"
    if pct >= CRITICAL_PCT:
        return "critical"
    if pct >= WARN_PCT:
        return "warn"
    return "ok"


def worst_level(*pcts: float | None) -> Level:
    """The worst level of the shares given (unknown ones count as "ok")."""
    return min((level_of_pct(pct) for pct in pcts), key=LEVELS.index, default="ok")
