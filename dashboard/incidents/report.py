"""One OOM incident in numbers and words, a suggested memory size, and its export bundle.

The incident is a row of `store.incidents_since` / `sandbox_incidents` (sandbox_id, kind
"oom_confirmed" or "oom_suspected", at, process, pid, mem_used_bytes, mem_total_bytes,
evidence, ...); the series is `store.sandbox_series` over `incident_window(at)`. Sizes are
bytes, rates bytes per second, times aware UTC (ISO 8601 in exports).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.common.metrics import format_bytes
from dashboard.common.plain_text import csv_cell
from dashboard.common.ranges import as_utc, utc_text
from dashboard.common.values import int_or_none, text_or_none

# E2B sizes memory in MiB; these are the sizes we suggest from.
MEMORY_SIZES_MB = (128, 256, 512, 1024, 2048, 4096, 8192)
# The peak before a kill understates the need (the kernel stopped the growth at the limit,
# and 5 s samples miss short spikes), so a quarter on top is the margin we suggest.
HEADROOM = 1.25
GROWTH_WINDOW = timedelta(minutes=2)
CONFIRMED = "oom_confirmed"
_MIB = 2**20
Quote = Callable[[str], str]


@dataclass(frozen=True)
class IncidentReport:
    """An incident's numbers. `peak_bytes` is the highest memory used up to `at`;
    `growth_bytes_per_s` the trend (least squares) over the 2 min before `at`, None with
    fewer than two points; `suggested_memory_mb` None when the peak is unknown or above
    the largest size."""

    sandbox_id: str
    kind: str
    at: datetime
    process: str | None
    pid: int | None
    limit_bytes: int | None
    peak_bytes: int | None
    growth_bytes_per_s: float | None
    suggested_memory_mb: int | None
    summary: str


def incident_window(
    at: datetime, before_s: float = 600, after_s: float = 120
) -> tuple[datetime, datetime]:
    """The range an incident view shows: `before_s` seconds before `at` to `after_s` after."""
    return at - timedelta(seconds=before_s), at + timedelta(seconds=after_s)


def suggested_memory_mb(peak_bytes: int | None) -> int | None:
    """The smallest E2B memory size (MiB) holding `peak_bytes` plus 25 %; None when the
    peak is unknown or even 8192 MiB would not hold it."""
    if peak_bytes is None or peak_bytes <= 0:
        return None
    needed_mb = peak_bytes * HEADROOM / _MIB
    return next((size for size in MEMORY_SIZES_MB if size >= needed_mb), None)


def build_report(incident: Mapping[str, object], series: pd.DataFrame) -> IncidentReport:
    """The numbers of `incident`, its memory read from `series` (bucket_start,
    mem_used_bytes, mem_total_bytes). ValueError when the incident has no sandbox or time.

    The suggested size covers the peak plus 25 %; for a confirmed kill, at least the limit
    plus 25 %: the kernel kills at the limit, so the need reached it even when the 5 s
    samples (maxima of their bucket) saw less.
    """
    sandbox_id = text_or_none(incident.get("sandbox_id"))
    at = as_utc(incident.get("occurred_at"))
    if sandbox_id is None or at is None:
        raise ValueError("an incident needs a sandbox_id and a time (occurred_at)")
    kind = str(incident.get("kind") or "oom_suspected")
    before = _before(series, at)
    limit = int_or_none(incident.get("mem_total_bytes")) or _latest(before, "mem_total_bytes")
    peak = _max_of(int_or_none(incident.get("mem_used_bytes")), _latest_max(before))
    report = IncidentReport(
        sandbox_id=sandbox_id,
        kind=kind,
        at=at,
        process=text_or_none(incident.get("process")),
        pid=int_or_none(incident.get("pid")),
        limit_bytes=limit,
        peak_bytes=peak,
        growth_bytes_per_s=_growth_bytes_per_s(
            before[before["bucket_start"] >= at - GROWTH_WINDOW]
        ),
        suggested_memory_mb=suggested_memory_mb(_need(kind, peak, limit)),
        summary="",
    )
    text = summary(report, text_or_none(incident.get("evidence")))
    return IncidentReport(**{**asdict(report), "summary": text})


def _need(kind: str, peak: int | None, limit: int | None) -> int | None:
    return _max_of(peak, limit if kind == CONFIRMED else None)


def summary(report: IncidentReport, evidence: str | None, quote: Quote = str) -> str:
    """The incident in words: who was killed or what was seen, the evidence, memory and
    the suggested size. Outside text (the sandbox ID, the process, the evidence) goes
    through `quote`: as it is for exports, `plain_text.literal` for a page's Markdown."""
    need = _need(report.kind, report.peak_bytes, report.limit_bytes)
    who = quote(report.process) if report.process else "a process"
    if report.pid is not None:
        who += f" (pid {report.pid})"
    when = utc_text(report.at)
    if report.kind == CONFIRMED:
        text = (
            f"In sandbox {quote(report.sandbox_id)}, {who} was killed by the OOM killer at {when}"
        )
    else:
        text = (
            f"Sandbox {quote(report.sandbox_id)} probably ran out of memory at {when} "
            "(suspected from its metrics; no log line or killed event confirms it)"
        )
    text += f" ({quote(evidence)})." if evidence else "."
    limit = f" of its {format_bytes(report.limit_bytes)} limit" if report.limit_bytes else ""
    if report.peak_bytes is not None:
        text += f" Memory peaked at {format_bytes(report.peak_bytes)}{limit}"
        if report.growth_bytes_per_s is not None:
            text += f", {_trend(report.growth_bytes_per_s)} over the 2 minutes before"
        text += "."
    basis = "the peak" if need == report.peak_bytes else "the limit it hit"
    if report.suggested_memory_mb is not None:
        size = format_bytes(report.suggested_memory_mb * _MIB)
        text += f" Suggested memory size: {size} ({basis} plus 25 % headroom)."
    elif need is not None:
        text += f" Even 8 GiB would not hold {basis} plus 25 % headroom."
    else:
        text += " No memory samples were stored around it, so no size can be suggested."
    return text


def _trend(growth_bytes_per_s: float) -> str:
    if growth_bytes_per_s > 0:
        return f"growing by {format_bytes(growth_bytes_per_s)}/s"
    if growth_bytes_per_s < 0:
        return f"shrinking by {format_bytes(-growth_bytes_per_s)}/s"
    return "flat"


def export_json(
    report: IncidentReport, series: pd.DataFrame, events: pd.DataFrame, logs: pd.DataFrame
) -> bytes:
    """One JSON object {report, metrics, events, logs} (UTF-8); frames become lists of
    row objects, times ISO 8601 UTC, missing values null."""
    bundle = {
        "report": _report_record(report),
        "metrics": _records(series),
        "events": _records(events),
        "logs": _records(logs),
    }
    return json.dumps(bundle, indent=2, ensure_ascii=False).encode()


def export_csv_zip(
    report: IncidentReport, series: pd.DataFrame, events: pd.DataFrame, logs: pd.DataFrame
) -> bytes:
    """A zip of report.csv (one row), metrics.csv, events.csv and logs.csv; times ISO 8601
    UTC, missing values empty, text that a spreadsheet would run as a formula (a log line
    starting with "=") kept as text behind an apostrophe."""
    parts = {
        "report.csv": [_report_record(report)],
        "metrics.csv": _records(series),
        "events.csv": _records(events),
        "logs.csv": _records(logs),
    }
    columns = {
        "report.csv": list(_report_record(report)),
        "metrics.csv": [str(c) for c in series.columns],
        "events.csv": [str(c) for c in events.columns],
        "logs.csv": [str(c) for c in logs.columns],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, rows in parts.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=columns[name], lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
            bundle.writestr(name, text.getvalue())
    return buffer.getvalue()


def incident_key(incident: Mapping[str, object]) -> str:
    """A stable ID for URLs: "<sandbox_id>@<epoch milliseconds of occurred_at>"."""
    sandbox_id = text_or_none(incident.get("sandbox_id"))
    at = as_utc(incident.get("occurred_at"))
    if sandbox_id is None or at is None:
        raise ValueError("an incident needs a sandbox_id and a time (occurred_at)")
    return f"{sandbox_id}@{_epoch_ms(at)}"


def parse_incident_key(key: str) -> tuple[str, datetime]:
    """(sandbox_id, at UTC to the millisecond) from `incident_key`'s text; ValueError, in
    words, for anything else."""
    sandbox_id, sep, ms_text = key.strip().rpartition("@")
    if not sep or not sandbox_id or not ms_text.isdigit() or not ms_text.isascii():
        raise ValueError(f"not an incident key: {key!r} (expected <sandbox id>@<epoch ms>)")
    try:
        at = datetime.fromtimestamp(int(ms_text) / 1000, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise ValueError(f"not an incident key: {key!r} (time out of range)") from error
    return sandbox_id, at


def _epoch_ms(at: datetime) -> int:
    # Integer arithmetic: a float timestamp could round a millisecond up.
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _before(series: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """The series' rows up to `at` (the bucket holding `at` included), in time order."""
    if series is None or series.empty or "bucket_start" not in series:
        return pd.DataFrame({"bucket_start": pd.Series(dtype="datetime64[us, UTC]")})
    rows = series[series["bucket_start"] <= pd.Timestamp(at)]
    return rows.sort_values("bucket_start")


def _latest(rows: pd.DataFrame, column: str) -> int | None:
    if column not in rows:
        return None
    values = rows[column].dropna()
    return int_or_none(values.iloc[-1]) if len(values) else None


def _latest_max(rows: pd.DataFrame) -> int | None:
    if "mem_used_bytes" not in rows:
        return None
    return int_or_none(rows["mem_used_bytes"].max())


def _growth_bytes_per_s(rows: pd.DataFrame) -> float | None:
    """The least-squares slope of memory used over time, bytes per second."""
    if "mem_used_bytes" not in rows:
        return None
    rows = rows.dropna(subset=["mem_used_bytes"])
    if len(rows) < 2:
        return None
    t_s = (rows["bucket_start"] - rows["bucket_start"].iloc[0]).dt.total_seconds()
    used = rows["mem_used_bytes"].astype("float64")
    spread = float(((t_s - t_s.mean()) ** 2).sum())
    if spread == 0:
        return None
    return float(((t_s - t_s.mean()) * (used - used.mean())).sum()) / spread


def _report_record(report: IncidentReport) -> dict[str, object]:
    record = asdict(report)
    record["at"] = report.at.isoformat()
    return record


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as plain dicts for JSON/CSV: datetimes as ISO 8601 UTC, missing as None."""
    if frame is None or frame.empty:
        return []
    rows: list[dict[str, object]] = []
    for row in frame.to_dict("records"):
        rows.append({str(key): _plain(value) for key, value in row.items()})
    return rows


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        stamp = as_utc(value)
        return stamp.isoformat() if stamp else None
    if isinstance(value, list | tuple | dict | str | bool) or value is None:
        return value
    if pd.isna(value):
        return None
    item = getattr(value, "item", None)  # numpy scalars: their Python value
    return item() if callable(item) else value


def _max_of(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None
