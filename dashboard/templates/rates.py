"""The cost rates the Templates page estimates with (no imports, so the monitor's runtime
can carry them without pulling in a page)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostRates:
    """Dollars per vCPU-hour and per GiB-hour of memory (SANDSCOPE_COST_PER_VCPU_HOUR,
    SANDSCOPE_COST_PER_GIB_HOUR)."""

    per_vcpu_hour: float
    per_gib_hour: float
