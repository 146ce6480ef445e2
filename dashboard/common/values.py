"""Cells of store frames as plain Python values: frames hold NaN, NA or None where a value
is missing, and numbers as numpy types."""

from __future__ import annotations

import math

import pandas as pd

from dashboard.common.metrics import MISSING


def text_or_none(value: object) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def text_or_dash(value: object) -> str:
    """A non-empty string as it is; "—" (`metrics.MISSING`) for None, NaN, "" or a non-string,
    so that a table shows a dash, never the word "None", where a text is unknown."""
    return value if isinstance(value, str) and value else MISSING


def with_dashes(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """A copy of `frame` whose text `columns` read "—" where the text is unknown."""
    shown = frame.copy()
    for column in columns:
        shown[column] = shown[column].map(text_or_dash).astype(object)
    return shown


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
