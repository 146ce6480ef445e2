from __future__ import annotations

import math

import pytest

from dashboard.incidents.data import memory_cell

MIB = 2**20


@pytest.mark.parametrize(
    ("kind", "used_bytes", "limit_bytes", "shown"),
    [
        ("suspected", 120 * MIB, 128 * MIB, "120 MiB / 128 MiB"),
        ("confirmed", 126 * MIB, 128 * MIB, "126 MiB / 128 MiB"),  # a sample says more
        ("confirmed", math.nan, 128 * MIB, "limit reached / 128 MiB"),  # pandas' missing
        ("confirmed", None, None, "limit reached / —"),
        ("suspected", None, 128 * MIB, "— / 128 MiB"),  # no sample: no claim
    ],
)
def test_memory_cell(
    kind: str, used_bytes: float | None, limit_bytes: float | None, shown: str
) -> None:
    assert memory_cell(kind, used_bytes, limit_bytes) == shown
