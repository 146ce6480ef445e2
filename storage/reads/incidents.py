"""OOM incidents, and the sandbox log lines kept around them (the evidence the incident
pages show)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from storage import tables
from storage.base import StoreBase
from storage.batches import require_aware
from storage.reads.arguments import check_limit

# An incident with the template and alias of its sandbox.
_INCIDENT_COLUMNS = tables.INCIDENTS.select_list("i") + ", s.template_id, s.alias"
_LOG_COLUMNS = tables.LOG_LINES.select_list(names=("ts", "level", "message", "fields_json"))


class IncidentReads(StoreBase):
    """OOM incidents and their log lines."""

    def incidents_since(self, since: datetime) -> pd.DataFrame:
        """OOM incidents at or after `since`, oldest first.

        Columns: sandbox_id, kind, occurred_at, detected_at (UTC), process, pid, mem_used_bytes,
        mem_total_bytes, evidence, template_id, alias.
        """
        require_aware(since, "since")
        return self._query(
            f"""SELECT {_INCIDENT_COLUMNS}
            FROM incidents i LEFT JOIN sandboxes s USING (sandbox_id)
            WHERE i.occurred_at >= ? ORDER BY i.occurred_at, i.sandbox_id""",
            [since],
        )

    def sandbox_incidents(self, sandbox_id: str) -> pd.DataFrame:
        """The sandbox's OOM incidents, oldest first; the columns of `incidents_since`:
        sandbox_id, kind, occurred_at, detected_at (UTC), process, pid, mem_used_bytes,
        mem_total_bytes, evidence, template_id, alias."""
        return self._query(
            f"""SELECT {_INCIDENT_COLUMNS}
            FROM incidents i LEFT JOIN sandboxes s USING (sandbox_id)
            WHERE i.sandbox_id = ? ORDER BY i.occurred_at, i.kind""",
            [sandbox_id],
        )

    def logs_around(self, sandbox_id: str, at: datetime, before: int, after: int) -> pd.DataFrame:
        """The sandbox's `before` stored log lines at or before `at` and `after` lines after
        it, in time order. Columns: ts (UTC), level, message, fields_json."""
        require_aware(at, "at")
        check_limit(before)
        check_limit(after)
        return self._query(
            f"""SELECT * FROM (
                SELECT {_LOG_COLUMNS} FROM (
                    SELECT * FROM log_lines WHERE sandbox_id = $id AND ts <= $at
                    ORDER BY ts DESC LIMIT $before)
                UNION ALL
                SELECT {_LOG_COLUMNS} FROM (
                    SELECT * FROM log_lines WHERE sandbox_id = $id AND ts > $at
                    ORDER BY ts LIMIT $after))
            ORDER BY ts""",
            {"id": sandbox_id, "at": at, "before": before, "after": after},
        )

    def logs_between(
        self, sandbox_id: str, start: datetime, end: datetime, limit: int = 500
    ) -> pd.DataFrame:
        """The sandbox's stored log lines in [start, end), in time order; the newest `limit`
        when there are more. Columns: ts (UTC), level, message, fields_json."""
        require_aware(start, "start")
        require_aware(end, "end")
        check_limit(limit)
        return self._query(
            f"""SELECT * FROM (
                SELECT {_LOG_COLUMNS} FROM log_lines
                WHERE sandbox_id = $id AND ts >= $start AND ts < $end
                ORDER BY ts DESC, message DESC LIMIT $limit)
            ORDER BY ts, message""",
            {"id": sandbox_id, "start": start, "end": end, "limit": limit},
        )
