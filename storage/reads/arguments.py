"""Checks and conversions of the arguments reads take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_limit(limit: int) -> None:
    """Raise ValueError for a negative row limit."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")


def epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (no float rounding)."""
    return (value.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
