"""How the Sandboxes table looks: which columns, in which units, and the level marks.

Values stay numbers (so a column sorts by value); the column config formats them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.common.levels import LEVEL_MARKS
from dashboard.common.metrics import format_bytes
from dashboard.common.values import with_dashes
from storage import MonitorStore

MIB = 1024**2

TRIAGE_COLUMNS = {
    "sandbox_id": st.column_config.TextColumn("Sandbox"),
    "level": st.column_config.TextColumn("Level", help="The fullest of CPU, memory and disk"),
    "state": st.column_config.TextColumn("State"),
    "template": st.column_config.TextColumn("Template"),
    "alias": st.column_config.TextColumn("Alias"),
    "metadata": st.column_config.TextColumn("Metadata"),
    "age_min": st.column_config.NumberColumn("Age", format="%.0f min"),
    "time_left_min": st.column_config.NumberColumn(
        "Time left", format="%.0f min", help="Before its timeout"
    ),
    "cpu_pct": st.column_config.ProgressColumn("CPU", format="%.0f%%", min_value=0, max_value=100),
    "memory": st.column_config.TextColumn("Memory used / limit"),
    "mem_pct": st.column_config.ProgressColumn(
        "Memory", format="%.0f%%", min_value=0, max_value=100
    ),
    "disk": st.column_config.TextColumn("Disk used / limit"),
    "disk_pct": st.column_config.ProgressColumn(
        "Disk", format="%.0f%%", min_value=0, max_value=100
    ),
    "peak_memory_mib": st.column_config.NumberColumn("Peak memory", format="%.0f MiB"),
    "oom_in_min": st.column_config.NumberColumn(
        "OOM in", format="%.0f min", help="Projected from the memory trend of the last 5 min"
    ),
    "disk_full_in_min": st.column_config.NumberColumn(
        "Disk full in",
        format="%.0f min",
        help="Projected from the disk trend of the last 5 minutes",
    ),
}


def triage_display(table: pd.DataFrame) -> pd.DataFrame:
    """`triage.triage_table` as shown: durations in minutes and peaks in MiB (numbers, so
    the columns sort by value), used / limit as text beside the numeric shares, and "—"
    where a template, alias or metadata is unknown."""
    shown = with_dashes(table, ("template", "alias", "metadata"))
    for column in ("age", "time_left", "oom_in", "disk_full_in"):
        shown[f"{column}_min"] = shown[f"{column}_s"] / 60
    shown["memory"] = _used_of_limit(shown["mem_used_bytes"], shown["mem_limit_bytes"])
    shown["disk"] = _used_of_limit(shown["disk_used_bytes"], shown["disk_limit_bytes"])
    shown["peak_memory_mib"] = shown["peak_mem_bytes"] / MIB
    # A mark with words, not a styled row: a pandas Styler cost 300 ms a refresh at 1,000
    # rows (bench/README.md).
    shown["level"] = shown["level"].map(lambda level: LEVEL_MARKS.get(level, level))
    return shown[list(TRIAGE_COLUMNS)]  # only what is shown travels to the browser


def _used_of_limit(used: pd.Series, limit: pd.Series) -> pd.Series:
    return pd.Series(
        [f"{format_bytes(u)} / {format_bytes(lim)}" for u, lim in zip(used, limit, strict=True)],
        index=used.index,
    )


def known_templates(store: MonitorStore) -> list[str]:
    """Templates of the sandboxes stored, for the triage filter (unknown ones left out)."""
    templates = store.sandboxes(include_ended=True)["template_id"]
    return sorted({template for template in templates if isinstance(template, str) and template})
