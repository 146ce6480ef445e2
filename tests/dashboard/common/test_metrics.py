import math
import re

import pytest

from dashboard.common.metrics import METRICS, Metric, format_bytes, format_duration_s, format_value

MiB = 2**20
GiB = 2**30


def test_catalog_holds_the_seven_metrics_with_their_labels_and_units() -> None:
    assert {key: (m.label, m.unit) for key, m in METRICS.items()} == {
        "cpu_pct": ("CPU", "pct"),
        "mem_used": ("Memory used", "bytes"),
        "mem_cache": ("Page cache", "bytes"),
        "disk_used": ("Disk used", "bytes"),
        "cpu_vcpus": ("CPU used", "vcpus"),
        "sandboxes": ("Running sandboxes", "count"),
        "start_rate": ("Start rate", "per_s"),
    }


def test_every_metric_has_its_own_colour_and_a_help_line() -> None:
    colours = [metric.colour for metric in METRICS.values()]
    assert len(set(colours)) == len(colours)
    for key, metric in METRICS.items():
        assert metric.key == key
        assert re.fullmatch(r"#[0-9a-f]{6}", metric.colour)
        assert metric.help and "\n" not in metric.help


def test_catalog_cannot_be_changed_by_a_caller() -> None:
    with pytest.raises(TypeError):
        METRICS["cpu_pct"] = METRICS["mem_used"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("value_bytes", "text"),
    [
        (512 * MiB, "512 MiB"),
        (1.5 * GiB, "1.5 GiB"),
        (812.44 * MiB, "812.4 MiB"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (1023.96 * MiB, "1 GiB"),
        (3 * 1024 * GiB, "3 TiB"),
        (-2 * MiB, "-2 MiB"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_format_bytes(value_bytes: float | None, text: str) -> None:
    assert format_bytes(value_bytes) == text


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("cpu_pct", 45.23, "45.2 %"),
        ("cpu_pct", 100, "100.0 %"),
        ("mem_used", 1.2 * GiB, "1.2 GiB"),
        ("cpu_vcpus", 1.5, "1.50 vCPUs"),
        ("sandboxes", 3, "3"),
        ("sandboxes", 1234, "1,234"),
        ("start_rate", 0.4, "0.4 /s"),
        ("start_rate", 0.05, "0.05 /s"),
        ("cpu_pct", None, "—"),
        ("sandboxes", math.nan, "—"),
    ],
)
def test_format_value_reads_in_the_metric_unit(key: str, value: float | None, text: str) -> None:
    assert format_value(METRICS[key], value) == text


def test_format_value_of_a_custom_metric() -> None:
    metric = Metric("x", "X", "pct", "#000000", "a test metric")
    assert format_value(metric, 87.46) == "87.5 %"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (59.9, "59 s"),
        (12 * 60 + 30, "12 min"),
        (3 * 3600 + 5 * 60 + 59, "3 h 5 min"),
        (3 * 3600, "3 h"),
        (2 * 86400 + 4 * 3600 + 120, "2 d 4 h"),
        (5 * 86400, "5 d"),
        (-90, "-1 min"),
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_format_duration_s(seconds: float | None, text: str) -> None:
    assert format_duration_s(seconds) == text
