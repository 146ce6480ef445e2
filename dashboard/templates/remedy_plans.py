"""The remedy's plan from what a page knows: an OOM incident (the incident page) or a
template's fit over a range (the Templates page). No Streamlit here.

The template a sandbox ran is found in the catalog (`GET /v2/templates` as last listed) by
ID or name; the new template is built from its first name (E2B resolves names and IDs
alike), or from the sandbox's alias or template ID when the catalog does not list it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from dashboard.actions.template_remedy import RemedyPlan, plan_remedy
from dashboard.incidents.report import IncidentReport, incident_window
from dashboard.templates.suggestion import suggest_memory
from storage import MonitorStore

INCIDENT_CPU_BASIS = "its CPU p95 over the 10 min before the kill"
TEMPLATE_CPU_BASIS = "the p95 of its sandboxes' peak CPU"
_SERIES_POINTS = 600


def taken_names(catalog: pd.DataFrame) -> set[str]:
    """Every name and alias of the catalog's templates."""
    names: set[str] = set()
    for column in ("names", "aliases"):
        for listed in catalog.get(column, pd.Series(dtype=object)):
            names.update(str(name) for name in listed)
    return names


def catalog_entry(catalog: pd.DataFrame, template: str) -> Mapping[str, object] | None:
    """The catalog row of the template with ID, name or alias `template`; None if unlisted."""
    rows: list[dict[str, object]] = catalog.to_dict("records")
    for row in rows:
        listed = {*row["names"], *row["aliases"]}  # type: ignore[misc]
        if template == row["template_id"] or template in listed:
            return row
    return None


def source_name(entry: Mapping[str, object] | None, fallback: str) -> str:
    """The name to build from: the template's first name, else its first alias, else
    `fallback` (the sandbox's alias or template ID)."""
    if entry is not None:
        for column in ("names", "aliases"):
            listed = list(entry[column])  # type: ignore[call-overload]
            if listed:
                return str(listed[0])
    return fallback


def plan_for_incident(store: MonitorStore, report: IncidentReport) -> RemedyPlan | None:
    """The plan for an incident with a suggested size; None without one, or when its
    sandbox is not stored."""
    if report.suggested_memory_mb is None:
        return None
    record = store.sandbox_record(report.sandbox_id)
    if record is None:
        return None
    catalog = store.template_catalog()
    entry = catalog_entry(catalog, record.template_id)
    source = source_name(entry, record.alias or record.template_id)
    start, _ = incident_window(report.at)
    series = store.sandbox_series(report.sandbox_id, start, report.at, _SERIES_POINTS)
    cpu = series["cpu_used_pct"].dropna()
    cpu_p95 = float(np.percentile(cpu, 95)) if len(cpu) else None
    return plan_remedy(
        source=source,
        memory_mb=report.suggested_memory_mb,
        source_cpu_count=record.cpu_count,
        cpu_p95_pct=cpu_p95,
        cpu_basis=INCIDENT_CPU_BASIS,
        taken_names=taken_names(catalog),
        source_memory_mb=record.memory_mb,
        sandbox_ids=(report.sandbox_id,),
    )


def plan_for_template(
    catalog: pd.DataFrame, entry: Mapping[str, object], fit: pd.DataFrame
) -> RemedyPlan | None:
    """The plan for catalog row `entry` from `store.template_fit` rows `fit` (by
    template); None when none of its sandboxes was sampled in the range, or even the
    largest size is too small."""
    rows = fit[fit["group_value"] == entry["template_id"]]
    if rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    suggestion = suggest_memory(row)
    if suggestion.memory_mb is None:
        return None
    cpu = row.get("cpu_peak_p95_pct")
    return plan_remedy(
        source=source_name(entry, str(entry["template_id"])),
        memory_mb=suggestion.memory_mb,
        source_cpu_count=int(entry["cpu_count"]),  # type: ignore[call-overload]
        cpu_p95_pct=None if cpu is None or pd.isna(cpu) else float(cpu),
        cpu_basis=TEMPLATE_CPU_BASIS,
        taken_names=taken_names(catalog),
        source_memory_mb=int(entry["memory_mb"]),  # type: ignore[call-overload]
    )
