"""Every metric the dashboard shows, described once as data, and how its values read.

Charts take colour, label and unit from here; tooltips and the README take the help line.
How full a metric may get is one rule for all, in `dashboard.common.levels`. Values are
formatted in binary units (MiB, GiB), as E2B sizes sandboxes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pandas as pd

Unit = Literal["pct", "bytes", "vcpus", "count", "per_s"]

MISSING = "—"
"""What a missing value (None or NaN) reads as."""


@dataclass(frozen=True)
class Metric:
    """One metric: how it is named, measured and coloured."""

    key: str
    label: str
    unit: Unit
    colour: str
    help: str


# Mid-tone colours (Tailwind 500 shades): readable on both white and near-black
# backgrounds, and distinct from the red / amber used for OOM and thresholds.
_CATALOG = (
    Metric(
        "cpu_pct",
        "CPU",
        "pct",
        "#3b82f6",
        "CPU used, as a share of the sandbox's vCPUs (100 % = every vCPU busy).",
    ),
    Metric(
        "mem_used",
        "Memory used",
        "bytes",
        "#8b5cf6",
        "Memory used by the sandbox's processes, not counting the page cache.",
    ),
    Metric(
        "mem_cache",
        "Page cache",
        "bytes",
        "#a78bfa",
        "Memory the kernel uses to cache files; it is given back before an OOM kill.",
    ),
    Metric(
        "disk_used",
        "Disk used",
        "bytes",
        "#14b8a6",
        "Space used on the sandbox's root filesystem.",
    ),
    Metric(
        "cpu_vcpus",
        "CPU used",
        "vcpus",
        "#0ea5e9",
        "CPU used across the team, in vCPUs kept busy.",
    ),
    Metric(
        "sandboxes",
        "Running sandboxes",
        "count",
        "#10b981",
        "Sandboxes running at the same time, against the team's concurrency limit.",
    ),
    Metric(
        "start_rate",
        "Start rate",
        "per_s",
        "#ec4899",
        "Sandboxes started per second across the team.",
    ),
)

METRICS: Mapping[str, Metric] = MappingProxyType({metric.key: metric for metric in _CATALOG})
"""The catalog by key, in display order."""

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _trim(number: float, decimals: int) -> str:
    """`number` with at most `decimals` decimals, without a trailing ".0"."""
    text = f"{number:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _number(value: object) -> float | None:
    """`value` as a float; None for None, NaN or pandas' NA (a store frame's "no value")."""
    if value is None or bool(pd.isna(value)):  # type: ignore[arg-type, unused-ignore]
        return None
    return float(value)  # type: ignore[arg-type]


def format_bytes(value_bytes: float | None) -> str:
    """A byte count in the largest binary unit that keeps it >= 1: "512 MiB", "1.5 GiB".

    One decimal at most; "—" for None or NaN.
    """
    value_bytes = _number(value_bytes)
    if value_bytes is None:
        return MISSING
    size = abs(value_bytes)
    exponent = 0
    while size >= 1024 and exponent < len(_BYTE_UNITS) - 1:
        size /= 1024
        exponent += 1
    if round(size, 1) >= 1024 and exponent < len(_BYTE_UNITS) - 1:
        # 1023.96 MiB would read "1024 MiB": say "1 GiB" instead.
        size /= 1024
        exponent += 1
    sign = "-" if value_bytes < 0 else ""
    return f"{sign}{_trim(size, 1)} {_BYTE_UNITS[exponent]}"


def format_value(metric: Metric, value: float | None) -> str:
    """`value` (in the metric's unit: %, bytes, vCPUs, a count, per second) as text.

    "45.2 %", "1.2 GiB", "1.50 vCPUs", "3", "0.4 /s"; "—" for None or NaN.
    """
    value = _number(value)
    if value is None:
        return MISSING
    if metric.unit == "pct":
        return f"{value:.1f} %"
    if metric.unit == "bytes":
        return format_bytes(value)
    if metric.unit == "vcpus":
        return f"{value:.2f} vCPUs"
    if metric.unit == "count":
        return f"{value:,.0f}"
    # Start rates are often far below one per second: keep two decimals there.
    decimals = 2 if 0 < abs(value) < 0.1 else 1
    return f"{value:.{decimals}f} /s"


def format_duration_s(seconds: float | None) -> str:
    """A duration in its two largest units, rounded down: "45 s", "12 min", "3 h 5 min",
    "2 d 4 h"; "—" for None or NaN (negative durations get a leading "-")."""
    seconds = _number(seconds)
    if seconds is None:
        return MISSING
    sign = "-" if seconds < 0 else ""
    whole_s = math.floor(abs(seconds))
    if whole_s < 60:
        return f"{sign}{whole_s} s"
    if whole_s < 3600:
        return f"{sign}{whole_s // 60} min"
    if whole_s < 86400:
        hours, minutes = divmod(whole_s // 60, 60)
        return f"{sign}{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(whole_s // 3600, 24)
    return f"{sign}{days} d" + (f" {hours} h" if hours else "")
