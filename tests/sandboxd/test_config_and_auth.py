"""sandboxd's settings and its API key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandboxd.auth import key_matches, load_or_create_key, load_or_create_team_id
from sandboxd.config import ConfigError, load_settings
from sandboxd.private_files import prepare_data_dir, write_private_text


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


def test_the_data_dir_and_what_sandboxd_writes_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    (data_dir / "old.json").write_text("{}")
    old_umask = os.umask(0o022)
    try:
        prepare_data_dir(data_dir)
        load_or_create_team_id(data_dir / "team_id")
        write_private_text(data_dir / "endpoints.json", "{}")
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.iterdir()}
    assert modes == {"old.json": 0o600, "team_id": 0o600, "endpoints.json": 0o600}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "sandboxd.example"])
def test_a_public_host_needs_the_allow_setting(host: str) -> None:
    with pytest.raises(ConfigError, match="SANDBOXD_ALLOW_PUBLIC_HOST"):
        load_settings({"SANDBOXD_HOST": host})
    allowed = load_settings({"SANDBOXD_HOST": host, "SANDBOXD_ALLOW_PUBLIC_HOST": "1"})
    assert allowed.host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_need_nothing(host: str) -> None:
    assert load_settings({"SANDBOXD_HOST": host}).host == host
