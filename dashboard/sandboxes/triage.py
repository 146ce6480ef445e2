"""The triage table: one row per sandbox with its usage against its limits, projections of
when memory or disk runs out, a level (`dashboard.common.levels`), and the filters the page
offers.

Input is `store.triage_rows(now)`; all times are aware UTC, sizes bytes, durations seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from dashboard.common.levels import LEVELS, Level, worst_level

_MIB = 2**20

COLUMNS = [
    "sandbox_id",
    "state",
    "template",
    "alias",
    "metadata",
    "age_s",
    "time_left_s",
    "cpu_pct",
    "mem_used_bytes",
    "mem_limit_bytes",
    "mem_pct",
    "disk_used_bytes",
    "disk_limit_bytes",
    "disk_pct",
    "peak_mem_bytes",
    "oom_in_s",
    "disk_full_in_s",
    "level",
]


@dataclass(frozen=True)
class TriageFilter:
    """What the page filters on; empty parts filter nothing.

    `metadata` is "key=value" (exact, case-insensitive) or "key" (has the key); `text` is a
    case-insensitive substring of the ID, alias, template or metadata.
    """

    states: Sequence[str] = ()
    templates: Sequence[str] = ()
    metadata: str = ""
    text: str = ""


def is_filtering(f: TriageFilter) -> bool:
    """True when some part of `f` filters rows out."""
    return bool(f.states or f.templates or f.metadata.strip() or f.text.strip())


def empty_table_text(f: TriageFilter) -> str:
    """What the page says when the table is empty: that the filters match nothing, or that
    there are no sandboxes yet."""
    if is_filtering(f):
        return "No sandbox matches the filters (search, state, template, metadata)."
    return "No sandboxes yet."


def project_time_to_limit_s(used: float, limit: float, slope_per_s: float) -> float | None:
    """Seconds until `used` reaches `limit` growing linearly at `slope_per_s` (same unit per
    second); 0 when already at or over it. None when not growing (slope <= 0) or when any
    input is unknown (None/NaN) or the limit is not positive: no honest projection then."""
    values = (used, limit, slope_per_s)
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    if slope_per_s <= 0 or limit <= 0:
        return None
    return max(0.0, (limit - used) / slope_per_s)


def triage_table(rows: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The table the page shows, hottest first (level critical, warn, ok; then memory % of
    limit, highest first; then sandbox ID). Columns are `COLUMNS`.

    Limits are the latest sample's totals, or the sandbox's configured size when it has no
    sample yet. `time_left_s` is end_at - now (>= 0) for running sandboxes; NaN for paused
    ones (their end_at is the time they were paused) and ended ones.
    """
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})
    now_ts = pd.Timestamp(now)
    running = (rows["state"] == "running") & ~rows["ended"].astype(bool)
    mem_limit = rows["mem_total_bytes"].fillna(rows["memory_mb"].astype("float64") * _MIB)
    disk_limit = rows["disk_total_bytes"].fillna(rows["disk_size_mb"].astype("float64") * _MIB)
    table = pd.DataFrame(
        {
            "sandbox_id": rows["sandbox_id"].astype(str),
            "state": rows["state"].where(~rows["ended"].astype(bool), "ended"),
            "template": rows["template_id"],
            "alias": rows["alias"],
            "metadata": rows["metadata_json"].map(metadata_text),
            "age_s": (now_ts - rows["started_at"]).dt.total_seconds(),
            "time_left_s": (rows["end_at"] - now_ts).dt.total_seconds().clip(lower=0.0),
            "cpu_pct": rows["cpu_used_pct"].astype("float64"),
            "mem_used_bytes": rows["mem_used_bytes"].astype("float64"),
            "mem_limit_bytes": mem_limit.astype("float64"),
            "disk_used_bytes": rows["disk_used_bytes"].astype("float64"),
            "disk_limit_bytes": disk_limit.astype("float64"),
            "peak_mem_bytes": rows["peak_mem_used_bytes"].astype("float64"),
        }
    )
    table.loc[~running.to_numpy(), "time_left_s"] = math.nan
    table["mem_pct"] = _pct(table["mem_used_bytes"], table["mem_limit_bytes"])
    table["disk_pct"] = _pct(table["disk_used_bytes"], table["disk_limit_bytes"])
    table["oom_in_s"] = _projection(table, "mem", rows["mem_slope_bytes_per_s"], running)
    table["disk_full_in_s"] = _projection(table, "disk", rows["disk_slope_bytes_per_s"], running)
    pcts = zip(table["mem_pct"], table["disk_pct"], table["cpu_pct"], strict=True)
    table["level"] = [level_of(m, d, c) for m, d, c in pcts]
    table["_rank"] = table["level"].map(LEVELS.index)
    table = table.sort_values(
        ["_rank", "mem_pct", "sandbox_id"], ascending=[True, False, True], na_position="last"
    )
    return table.drop(columns="_rank")[COLUMNS].reset_index(drop=True)


def level_of(mem_pct: float | None, disk_pct: float | None, cpu_pct: float | None) -> Level:
    """A row's level: the worst of its memory, disk and CPU shares by the one rule in
    `dashboard.common.levels`. Unknown values (None/NaN) count as ok."""
    return worst_level(mem_pct, disk_pct, cpu_pct)


def metadata_text(metadata_json: object) -> str:
    """Metadata JSON ({"k": "v"}) as "k=v, k2=v2" (keys sorted); "" when empty or invalid."""
    if not isinstance(metadata_json, str) or not metadata_json:
        return ""
    try:
        metadata = json.loads(metadata_json)
    except ValueError:
        return ""
    if not isinstance(metadata, dict):
        return ""
    return ", ".join(f"{key}={metadata[key]}" for key in sorted(metadata))


def apply_filter(table: pd.DataFrame, f: TriageFilter) -> pd.DataFrame:
    """The rows of `triage_table` output that pass every part of `f`, in the same order."""
    keep = pd.Series(True, index=table.index)
    if f.states:
        keep &= table["state"].isin(list(f.states))
    if f.templates:
        keep &= table["template"].isin(list(f.templates))
    if f.metadata.strip():
        keep &= table["metadata"].map(lambda text: _has_metadata(str(text), f.metadata))
    if f.text.strip():
        needle = f.text.strip().casefold()
        haystack = pd.Series("", index=table.index)
        for column in ("sandbox_id", "alias", "template", "metadata"):
            haystack = haystack + "\n" + table[column].fillna("").astype(str)
        keep &= haystack.str.casefold().str.contains(needle, regex=False)
    return table[keep]


def _has_metadata(text: str, term: str) -> bool:
    # Matching whole "k=v" items between the ", " separators keeps "team=a" from
    # matching "team=ab", and works when a value itself holds ", ".
    key, sep, value = term.partition("=")
    wanted = f"{key.strip()}={value.strip()}" if sep else f"{key.strip()}="
    items = f", {text}, ".casefold()
    return f", {wanted.casefold()}{', ' if sep else ''}" in items


def _pct(used: pd.Series, limit: pd.Series) -> pd.Series:
    return 100.0 * used / limit.where(limit > 0)


def _projection(
    table: pd.DataFrame, prefix: str, slope: pd.Series, running: pd.Series
) -> pd.Series:
    used, limit = table[f"{prefix}_used_bytes"], table[f"{prefix}_limit_bytes"]
    values = [
        project_time_to_limit_s(u, lim, s) if alive else None
        for u, lim, s, alive in zip(used, limit, slope.astype("float64"), running, strict=True)
    ]
    return pd.Series([math.nan if v is None else v for v in values], index=table.index)


def _dtype(column: str) -> str:
    text = {"sandbox_id", "state", "template", "alias", "metadata", "level"}
    return "object" if column in text else "float64"
