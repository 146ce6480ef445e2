"""Store cells as plain values, and unknown text as a dash."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dashboard.common.metrics import MISSING
from dashboard.common.values import text_or_dash, with_dashes


@pytest.mark.parametrize("unknown", [None, math.nan, pd.NA, "", 3])
def test_unknown_text_reads_as_a_dash(unknown: object) -> None:
    assert text_or_dash(unknown) == MISSING


def test_known_text_reads_as_it_is() -> None:
    assert text_or_dash("base") == "base"


def test_with_dashes_touches_only_the_columns_named_and_not_the_frame_given() -> None:
    frame = pd.DataFrame({"template": [None, "x"], "alias": [None, None]})
    shown = with_dashes(frame, ("template",))
    assert list(shown["template"]) == [MISSING, "x"]
    assert shown["alias"].isna().all()
    assert frame["template"].isna().iloc[0]
