"""The Templates page's tables: the fit per template (or metadata value) with its
suggested size, and the usage with its estimated cost, as text ready to show."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard.common.metrics import MISSING, format_bytes
from dashboard.common.ranges import TimeRange, utc_text
from dashboard.templates.rates import CostRates
from dashboard.templates.suggestion import suggest_memory
from storage import MonitorStore
from storage.reads.template_fit import DEFAULT_MAX_GROUPS

# The grouping choice meaning "by template" rather than by a metadata key.
BY_TEMPLATE = "Template"
MAX_GROUPS = DEFAULT_MAX_GROUPS


def cut_off_text(shown_groups: int) -> str | None:
    """What to say when a table may hold only the biggest groups; None when it holds all."""
    if shown_groups < MAX_GROUPS:
        return None
    return f"Only the {MAX_GROUPS} groups with the most sandboxes are shown."


FIT_COLUMNS = {
    "group_value": st.column_config.TextColumn("Group"),
    "sandboxes": st.column_config.NumberColumn(
        "Sandboxes", help="Started in the range; peaks are over those with samples"
    ),
    "memory": st.column_config.TextColumn("Memory limit"),
    # Beside the limit, so the two are read together (its evidence is the last column).
    "suggested": st.column_config.TextColumn("Suggested memory"),
    "peak_p50": st.column_config.TextColumn("Peak p50"),
    "peak_p95": st.column_config.TextColumn("Peak p95"),
    "peak_p99": st.column_config.TextColumn("Peak p99"),
    "peak_max": st.column_config.TextColumn("Peak max"),
    "ooms_per_100": st.column_config.TextColumn(
        "OOMs / 100", help="Confirmed OOM kills per 100 sandboxes started"
    ),
    "cpu_p95": st.column_config.TextColumn("CPU peak p95"),
    "disk_p95": st.column_config.TextColumn("Disk peak p95"),
    "headroom": st.column_config.TextColumn(
        "Headroom", help="Memory limit minus the p95 peak; negative is a shortfall"
    ),
    "evidence": st.column_config.TextColumn("Evidence", width="large"),
}
USAGE_COLUMNS = {
    "group_value": st.column_config.TextColumn("Group"),
    "sandboxes": st.column_config.NumberColumn("Sandboxes", help="Alive in the range"),
    "vcpu_hours": st.column_config.NumberColumn("vCPU-hours", format="%.2f"),
    "gib_hours": st.column_config.NumberColumn("GiB-hours", format="%.2f"),
    "cost": st.column_config.NumberColumn(
        "Estimated cost ($)", format="%.2f", help="At the SANDSCOPE_COST_PER_* rates"
    ),
}
USAGE_WITHOUT_COST = {k: v for k, v in USAGE_COLUMNS.items() if k != "cost"}


CATALOG_COLUMNS = {
    "name": st.column_config.TextColumn("Name", help="The template's first name (or alias)"),
    "other_names": st.column_config.TextColumn("Other names and aliases"),
    "template_id": st.column_config.TextColumn("Template ID"),
    "cpu": st.column_config.TextColumn("CPU"),
    "memory": st.column_config.TextColumn("Memory"),
    "disk": st.column_config.TextColumn("Disk"),
    "public": st.column_config.CheckboxColumn("Public"),
    "builds": st.column_config.NumberColumn("Builds"),
    "build_status": st.column_config.TextColumn(
        "Last build", help="The status of the template's latest build"
    ),
    "updated": st.column_config.TextColumn(
        "Updated", help="When the template last changed (a build finishing changes it)"
    ),
    "spawns": st.column_config.NumberColumn("Spawns", help="Sandboxes started from it"),
    "last_spawned": st.column_config.TextColumn("Last spawned"),
}


BUILD_COLUMNS = {
    "build_id": st.column_config.TextColumn("Build ID"),
    "status": st.column_config.TextColumn("Status"),
    "created": st.column_config.TextColumn("Created"),
    "finished": st.column_config.TextColumn("Finished"),
    "cpu": st.column_config.TextColumn("CPU"),
    "memory": st.column_config.TextColumn("Memory"),
}


def display_name(row: dict[str, object]) -> str:
    """A catalog row's name: its first name, else its first alias, else its ID."""
    for column in ("names", "aliases"):
        listed = list(row[column])  # type: ignore[call-overload]
        if listed:
            return str(listed[0])
    return str(row["template_id"])


def catalog_table(catalog: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """`store.template_catalog()` as text ready to show (`CATALOG_COLUMNS`), one row per
    template in the catalog's order."""
    rows = []
    for row in catalog.to_dict("records"):
        name = display_name(row)
        others = [n for n in dict.fromkeys([*row["names"], *row["aliases"]]) if n != name]
        last_spawned = row["last_spawned_at"]
        rows.append(
            {
                "name": name,
                "other_names": ", ".join(str(n) for n in others),
                "template_id": str(row["template_id"]),
                "cpu": f"{row['cpu_count']} vCPU",
                "memory": f"{row['memory_mb']} MiB",
                "disk": f"{row['disk_size_mb']} MiB",
                "public": bool(row["public"]),
                "builds": int(row["build_count"]),
                "build_status": str(row["build_status"]),
                "updated": utc_text(row["updated_at"], now),
                "spawns": int(row["spawn_count"]),
                "last_spawned": MISSING if pd.isna(last_spawned) else utc_text(last_spawned, now),
            }
        )
    return pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))


def group_key(choice: str) -> str | None:
    """The metadata key of a grouping choice; None for `BY_TEMPLATE`."""
    return None if choice == BY_TEMPLATE else choice


def grouping_choices(store: MonitorStore, time_range: TimeRange) -> list[str]:
    """`BY_TEMPLATE`, then the metadata keys of the sandboxes started in the range."""
    return [BY_TEMPLATE, *store.metadata_keys(time_range.start, time_range.end)]


def _mib_text(memory_mb: object) -> str:
    return MISSING if pd.isna(memory_mb) else f"{float(memory_mb):g} MiB"  # type: ignore[arg-type]


def _pct_text(pct: object) -> str:
    return MISSING if pd.isna(pct) else f"{float(pct):.1f} %"  # type: ignore[arg-type]


def fit_table(store: MonitorStore, time_range: TimeRange, choice: str) -> pd.DataFrame:
    """One row per group, the `FIT_COLUMNS` as text (sizes in binary units), with the
    suggested memory and its evidence (`dashboard.templates.suggestion`)."""
    fit = store.template_fit(time_range.start, time_range.end, group_key(choice))
    rows = []
    for row in fit.to_dict("records"):
        suggestion = suggest_memory(row)
        rows.append(
            {
                "group_value": str(row["group_value"]),
                "sandboxes": int(row["sandboxes"]),
                "memory": _mib_text(row["memory_mb"]),
                "peak_p50": format_bytes(row["mem_peak_p50_bytes"]),
                "peak_p95": format_bytes(row["mem_peak_p95_bytes"]),
                "peak_p99": format_bytes(row["mem_peak_p99_bytes"]),
                "peak_max": format_bytes(row["mem_peak_max_bytes"]),
                "ooms_per_100": f"{row['ooms_per_100_sandboxes']:.1f}",
                "cpu_p95": _pct_text(row["cpu_peak_p95_pct"]),
                "disk_p95": format_bytes(row["disk_peak_p95_bytes"]),
                "headroom": format_bytes(row["headroom_bytes"]),
                "suggested": _mib_text(suggestion.memory_mb)
                if suggestion.memory_mb is not None
                else MISSING,
                "evidence": suggestion.evidence,
            }
        )
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS))


def usage_table(
    store: MonitorStore, time_range: TimeRange, choice: str, rates: CostRates | None
) -> pd.DataFrame:
    """One row per group: sandboxes alive in the range, vCPU-hours, GiB-hours and the
    estimated cost in dollars (`USAGE_COLUMNS`; the cost is 0 without rates)."""
    per_vcpu_hour, per_gib_hour = (
        (0.0, 0.0) if rates is None else (rates.per_vcpu_hour, rates.per_gib_hour)
    )
    return store.template_usage(
        time_range.start, time_range.end, per_vcpu_hour, per_gib_hour, group_key(choice)
    )
