"""A suggested memory size for a template (or a metadata value's sandboxes) from its fit
row, with the evidence behind it. Pure: no Streamlit, no store.

The rule (docs/TEMPLATE-FIT.md): the p99 of the per-sandbox peaks plus the incident page's
margin; with any confirmed OOM, at least the current allotment plus that margin (the kernel
stopped the growth at the limit); rounded up to an E2B memory size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

from dashboard.common.metrics import format_bytes
from dashboard.incidents.report import HEADROOM, MEMORY_SIZES_MB

_MIB = 2**20


@dataclass(frozen=True)
class Suggestion:
    """`memory_mb` is None when nothing was sampled or even the largest size is too small;
    `evidence` says in words what the size rests on."""

    memory_mb: int | None
    evidence: str


def _number(value: object) -> float | None:
    # numbers.Real also takes numpy's scalars, which a frame row holds.
    if isinstance(value, numbers.Real) and math.isfinite(float(value)):
        return float(value)
    return None


def suggest_memory(fit: Mapping[str, object]) -> Suggestion:
    """The suggestion for one row of `store.template_fit` (mem_peak_p99_bytes, memory_mb,
    oom_incidents, sandboxes_sampled)."""
    p99 = _number(fit.get("mem_peak_p99_bytes"))
    sampled = int(_number(fit.get("sandboxes_sampled")) or 0)
    if p99 is None or sampled == 0:
        return Suggestion(None, "no samples of these sandboxes in the range")
    allotted_mb = _number(fit.get("memory_mb"))
    ooms = int(_number(fit.get("oom_incidents")) or 0)
    margin_pct = round((HEADROOM - 1) * 100)
    needed_mb = p99 * HEADROOM / _MIB
    evidence = f"p99 peak {format_bytes(p99)} of {sampled} sampled + {margin_pct} %"
    if ooms and allotted_mb is not None:
        needed_mb = max(needed_mb, allotted_mb * HEADROOM)
        evidence += (
            f"; {ooms} confirmed OOM kill{'s' if ooms != 1 else ''}, so at least "
            f"{allotted_mb:g} MiB + {margin_pct} %"
        )
    size = next((s for s in MEMORY_SIZES_MB if s >= needed_mb), None)
    if size is None:
        evidence += f"; more than the largest size ({MEMORY_SIZES_MB[-1]} MiB)"
    return Suggestion(size, evidence)
