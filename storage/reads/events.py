"""Lifecycle events and the audit of dashboard actions: since a time, or the newest few."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from storage import tables
from storage.base import StoreBase, utc
from storage.batches import require_aware
from storage.reads.arguments import check_limit

_EVENT_COLUMNS = tables.EVENTS.select_list()
_ACTION_COLUMNS = tables.ACTIONS.select_list()


class EventReads(StoreBase):
    """Lifecycle events and the action audit."""

    def events_since(self, since: datetime, sandbox_id: str | None = None) -> pd.DataFrame:
        """Lifecycle events at or after `since`, oldest first, of one sandbox or all.

        Columns: those of the `events` table: event_id, sandbox_id, type, ts (UTC),
        team_id, kill_reason, event_data_json.
        """
        require_aware(since, "since")
        return self._query(
            f"""SELECT {_EVENT_COLUMNS} FROM events
            WHERE ts >= $since AND ($id IS NULL OR sandbox_id = $id) ORDER BY ts, event_id""",
            {"since": since, "id": sandbox_id},
        )

    def events_latest(self, limit: int, sandbox_id: str | None = None) -> pd.DataFrame:
        """The `limit` newest lifecycle events, of one sandbox or all, newest first; the
        columns of `events_since`."""
        check_limit(limit)
        return self._query(
            f"""SELECT {_EVENT_COLUMNS} FROM events WHERE $id IS NULL OR sandbox_id = $id
            ORDER BY ts DESC, event_id DESC LIMIT $limit""",
            {"id": sandbox_id, "limit": limit},
        )

    def newest_event_at(self) -> datetime | None:
        """Time (UTC) of the newest stored lifecycle event, None when there is none."""
        with self._reading() as cur:
            row = cur.execute("SELECT max(ts) FROM events").fetchone()
        return utc(row[0]) if row and row[0] is not None else None

    def actions_latest(self, limit: int) -> pd.DataFrame:
        """The `limit` newest audited dashboard actions, newest first.

        Columns: those of the `actions` table: acted_at (UTC), actor, action, sandbox_ids
        (list[str]), outcome, detail.
        """
        check_limit(limit)
        df = self._query(
            f"""SELECT {_ACTION_COLUMNS} FROM actions
            ORDER BY acted_at DESC, actor, action LIMIT $limit""",
            {"limit": limit},
        )
        # DuckDB hands lists over as numpy arrays.
        df["sandbox_ids"] = pd.Series(
            [[str(v) for v in ids] for ids in df["sandbox_ids"]], index=df.index, dtype=object
        )
        return df
