"""Upper percentiles of a benchmark's timings, defined for any number of runs.

`statistics.quantiles` needs two values at least; a benchmark run with `--runs 1` has one,
and its only time is then every percentile.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: int) -> float:
    """The `pct`th percentile (1..99) of `values`, inclusive method; the value itself when
    there is only one. Raises ValueError on no values."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
