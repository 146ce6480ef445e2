"""Cells of store frames as plain Python values: frames hold NaN, NA or None where a value
is missing, and numbers as numpy types."""

from __future__ import annotations

import math


def text_or_none(value: object) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def int_or_none(value: object) -> int | None:
    """A whole number from an int, float or numeric text; None for None, NaN, NA, a bool or
    anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else int(number)
