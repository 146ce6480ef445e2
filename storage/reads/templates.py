"""The team's template catalog as the collectors last listed it (`GET /v2/templates`)."""

from __future__ import annotations

import pandas as pd

from storage import tables
from storage.base import StoreBase


class TemplateCatalogReads(StoreBase):
    """The templates table."""

    def template_catalog(self) -> pd.DataFrame:
        """Every template last listed, by first name (then ID).

        Columns: those of `storage.tables.TEMPLATES` (names and aliases are lists of
        strings; times UTC; last_spawned_at NaT when never spawned). Empty before the first
        listing, or when the team has no templates.
        """
        return self._query(
            f"""SELECT {tables.TEMPLATES.select_list()} FROM templates
            ORDER BY coalesce(names[1], aliases[1], template_id), template_id"""
        )

    def templates_listed_at(self) -> pd.Timestamp | None:
        """When the catalog was last listed; None when it never was (or was empty)."""
        with self._reading() as cur:
            row = cur.execute("SELECT max(listed_at) FROM templates").fetchone()
        return None if row is None or row[0] is None else pd.Timestamp(row[0])
