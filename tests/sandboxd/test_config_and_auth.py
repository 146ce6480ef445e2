"""sandboxd's settings and its API key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sandboxd.auth import key_matches, load_or_create_key
from sandboxd.config import ConfigError, load_settings


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings({})
    assert (settings.host, settings.api_port, settings.envd_port) == ("127.0.0.1", 3000, 49983)
    custom = load_settings({"SANDBOXD_API_PORT": "0", "SANDBOXD_DATA_DIR": str(tmp_path)})
    assert custom.api_port == 0
    assert custom.key_file == tmp_path / "api_key"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SANDBOXD_API_PORT", "70000"),
        ("SANDBOXD_MAX_SANDBOXES", "0"),
        ("SANDBOXD_ISOLATION", "none"),
        ("SANDBOXD_SAMPLE_INTERVAL_S", "soon"),
        ("SANDBOXD_SAMPLE_INTERVAL_S", "0.5"),  # two samples would share a whole second
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_key_is_made_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "api_key"
    key = load_or_create_key(key_file)
    assert key.startswith("e2b_") and int(key[4:], 16) >= 0 and len(key) == 44
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key(key_file) == key


def test_key_comparison() -> None:
    assert key_matches("e2b_abc", "e2b_abc")
    assert not key_matches("e2b_abc", "e2b_abd")
    assert not key_matches("e2b_abc", None)
