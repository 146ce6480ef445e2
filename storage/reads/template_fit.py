"""How each template (or each value of a metadata key) fits its sandboxes: memory, CPU and
disk peaks per sandbox, OOM rates, and the vCPU-hours and GiB-hours they were allotted.

The rules (which sandboxes count, which percentile, how alive time is measured) are in
docs/TEMPLATE-FIT.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from storage import tables
from storage.base import StoreBase
from storage.batches import require_aware
from storage.downsample import floor_minute
from storage.reads.arguments import check_limit

# Sample times come from the API, like started_at; a little slack covers rounding (as in
# storage.reads.fleet).
_BEFORE_START = timedelta(minutes=1)
_MIB = 2**20
# Only kernel-confirmed kills count: a suspected one may be an ordinary exit (docs/TEMPLATE-FIT.md).
_CONFIRMED_OOM = "oom_confirmed"
# A metadata key can hold one value per user (`userId`): a page shows the biggest groups
# and says how many there are; a few hundred rows is what a table can be read at.
DEFAULT_MAX_GROUPS = 200
# Keys are the creator's to choose; a select box of more than this is unusable.
MAX_METADATA_KEYS = 200

FIT_COLUMNS = (
    "group_value",
    "sandboxes",
    "sandboxes_sampled",
    "memory_mb",
    "mem_peak_p50_bytes",
    "mem_peak_p95_bytes",
    "mem_peak_p99_bytes",
    "mem_peak_max_bytes",
    "oom_incidents",
    "ooms_per_100_sandboxes",
    "cpu_peak_p95_pct",
    "disk_peak_p95_bytes",
    "headroom_bytes",
)
USAGE_COLUMNS = ("group_value", "sandboxes", "vcpu_hours", "gib_hours", "cost")


def _group_sql(group_key: str | None) -> tuple[str, dict[str, object]]:
    """The SQL of a sandbox's group (its template, or its value of metadata key
    `group_key`) and its parameters. The key is a parameter, never spliced into the SQL."""
    if group_key is None:
        return "template_id", {}
    # json_extract_string with a list of keys reads the key as a name, not as a JSON path.
    return "json_extract_string(metadata_json, [$group_key])[1]", {"group_key": group_key}


class TemplateFitReads(StoreBase):
    """Template fit and usage over a range."""

    def template_fit(
        self,
        start: datetime,
        end: datetime,
        group_key: str | None = None,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> pd.DataFrame:
        """One row per template (or per value of metadata key `group_key`; sandboxes
        without that key are left out) over the sandboxes started in [start, end): the
        `max_groups` groups with the most sandboxes, most first, then by group_value.

        Columns (`FIT_COLUMNS`): group_value; sandboxes (started in the range);
        sandboxes_sampled (those with at least one sample: the percentiles are over these);
        memory_mb (the largest allotted in the group, MiB); mem_peak_p50/p95/p99/max_bytes
        (percentiles of each sandbox's peak memory used, DuckDB's quantile_cont: linear
        interpolation between the two nearest peaks); oom_incidents (confirmed ones of these
        sandboxes) and ooms_per_100_sandboxes; cpu_peak_p95_pct (p95 of each sandbox's peak
        CPU %); disk_peak_p95_bytes; headroom_bytes (memory_mb in bytes minus the p95 peak;
        negative is a shortfall). Peaks are NaN for a group with no samples.
        """
        require_aware(start, "start")
        require_aware(end, "end")
        group_sql, params = _group_sql(group_key)
        max_of = tables.rollup_max_of
        sql = f"""
        WITH boxes AS (
            SELECT sandbox_id, {group_sql} AS group_value, memory_mb FROM sandboxes
            WHERE started_at >= $start AND started_at < $end),
        wanted AS (SELECT * FROM boxes WHERE group_value IS NOT NULL),
        peaks AS (
            SELECT sandbox_id, max(mem) AS mem, max(cpu) AS cpu, max(disk) AS disk FROM (
                SELECT sandbox_id, {max_of("mem_used_bytes").quoted} AS mem,
                    {max_of("cpu_used_pct").quoted} AS cpu,
                    {max_of("disk_used_bytes").quoted} AS disk
                FROM samples_1m
                WHERE minute >= $from_minute AND sandbox_id IN (SELECT sandbox_id FROM wanted)
                UNION ALL
                SELECT sandbox_id, mem_used_bytes, cpu_used_pct, disk_used_bytes FROM samples
                WHERE ts >= $from_ts AND sandbox_id IN (SELECT sandbox_id FROM wanted))
            GROUP BY sandbox_id),
        ooms AS (
            SELECT sandbox_id, count(*) AS n FROM incidents
            WHERE kind = $confirmed AND sandbox_id IN (SELECT sandbox_id FROM wanted)
            GROUP BY sandbox_id)
        SELECT w.group_value, count(*) AS sandboxes, count(p.sandbox_id) AS sandboxes_sampled,
            max(w.memory_mb) AS memory_mb,
            quantile_cont(p.mem, 0.50) AS mem_peak_p50_bytes,
            quantile_cont(p.mem, 0.95) AS mem_peak_p95_bytes,
            quantile_cont(p.mem, 0.99) AS mem_peak_p99_bytes,
            max(p.mem) AS mem_peak_max_bytes,
            coalesce(sum(o.n), 0) AS oom_incidents,
            100.0 * coalesce(sum(o.n), 0) / count(*) AS ooms_per_100_sandboxes,
            quantile_cont(p.cpu, 0.95) AS cpu_peak_p95_pct,
            quantile_cont(p.disk, 0.95) AS disk_peak_p95_bytes,
            max(w.memory_mb)::BIGINT * {_MIB} - quantile_cont(p.mem, 0.95) AS headroom_bytes
        FROM wanted w LEFT JOIN peaks p USING (sandbox_id) LEFT JOIN ooms o USING (sandbox_id)
        GROUP BY w.group_value ORDER BY sandboxes DESC, w.group_value LIMIT $max_groups"""
        check_limit(max_groups)
        done = self._rollup_done_until
        params |= {
            "start": start,
            "end": end,
            "from_minute": floor_minute(start - _BEFORE_START),
            # Minutes already rolled up are in samples_1m with the same maxima: raw
            # samples are read only after them (a week of raw is 100 M rows; bench/).
            "from_ts": max(start - _BEFORE_START, done)
            if done is not None
            else start - _BEFORE_START,
            "confirmed": _CONFIRMED_OOM,
            "max_groups": max_groups,
        }
        frame = self._query(sql, params)
        numbers = list(FIT_COLUMNS[4:])
        frame[numbers] = frame[numbers].astype("float64")
        return frame[list(FIT_COLUMNS)]

    def template_usage(
        self,
        start: datetime,
        end: datetime,
        cost_per_vcpu_hour: float,
        cost_per_gib_hour: float,
        group_key: str | None = None,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> pd.DataFrame:
        """One row per template (or per value of metadata key `group_key`) of the sandboxes
        alive during [start, end): the `max_groups` groups with the most sandboxes, most
        first, then by group_value.

        Columns (`USAGE_COLUMNS`): group_value; sandboxes (alive in the range); vcpu_hours
        and gib_hours (each sandbox's alive time inside the range, from started_at to its
        end, or to when it was last seen while it is still listed, times its cpu_count or
        memory_mb / 1024); cost (vcpu_hours x cost_per_vcpu_hour + gib_hours x
        cost_per_gib_hour, in the rates' currency).
        """
        require_aware(start, "start")
        require_aware(end, "end")
        group_sql, params = _group_sql(group_key)
        sql = f"""
        SELECT group_value, count(*) AS sandboxes,
            sum(alive_s * cpu_count) / 3600.0 AS vcpu_hours,
            sum(alive_s * memory_mb / 1024.0) / 3600.0 AS gib_hours
        FROM (
            SELECT {group_sql} AS group_value, cpu_count, memory_mb,
                epoch(least(coalesce(ended_at, last_seen_at), $end))
                    - epoch(greatest(started_at, $start)) AS alive_s
            FROM sandboxes
            WHERE started_at < $end AND coalesce(ended_at, last_seen_at) > $start)
        WHERE group_value IS NOT NULL
        GROUP BY group_value ORDER BY sandboxes DESC, group_value LIMIT $max_groups"""
        check_limit(max_groups)
        frame = self._query(sql, params | {"start": start, "end": end, "max_groups": max_groups})
        frame[["vcpu_hours", "gib_hours"]] = frame[["vcpu_hours", "gib_hours"]].astype("float64")
        frame["cost"] = (
            frame["vcpu_hours"] * cost_per_vcpu_hour + frame["gib_hours"] * cost_per_gib_hour
        )
        return frame[list(USAGE_COLUMNS)]

    def metadata_keys(self, start: datetime, end: datetime) -> list[str]:
        """The metadata keys of the sandboxes started in [start, end), sorted; the first
        `MAX_METADATA_KEYS` of them."""
        require_aware(start, "start")
        require_aware(end, "end")
        frame = self._query(
            """SELECT DISTINCT unnest(json_keys(metadata_json)) AS k FROM sandboxes
            WHERE started_at >= $start AND started_at < $end ORDER BY k LIMIT $max_keys""",
            {"start": start, "end": end, "max_keys": MAX_METADATA_KEYS},
        )
        return [str(k) for k in frame["k"]]
