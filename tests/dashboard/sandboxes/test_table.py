"""How the Sandboxes table shows what the store holds."""

from __future__ import annotations

import math

import pandas as pd

from dashboard.common.levels import LEVEL_MARKS
from dashboard.common.metrics import MISSING
from dashboard.sandboxes.table import TRIAGE_COLUMNS, triage_display
from dashboard.sandboxes.triage import COLUMNS


def triage_row(**values: object) -> dict[str, object]:
    row: dict[str, object] = {column: math.nan for column in COLUMNS}
    row.update(sandbox_id="sbx", state="running", level="ok", template="base", alias=None)
    row.update(metadata="", mem_used_bytes=2**20, mem_limit_bytes=2**30)
    row.update(values)
    return row


def test_an_unknown_template_alias_or_metadata_reads_as_a_dash() -> None:
    table = pd.DataFrame([triage_row(template=None), triage_row(sandbox_id="b", template="x")])
    shown = triage_display(table)
    assert list(shown.columns) == list(TRIAGE_COLUMNS)
    first, second = shown.iloc[0], shown.iloc[1]
    assert (first["template"], first["alias"], first["metadata"]) == (MISSING, MISSING, MISSING)
    assert second["template"] == "x"
    assert "None" not in shown.astype(str).to_numpy().ravel().tolist()


def test_the_level_reads_as_its_mark() -> None:
    table = pd.DataFrame([triage_row(level=level) for level in LEVEL_MARKS])
    assert list(triage_display(table)["level"]) == list(LEVEL_MARKS.values())
