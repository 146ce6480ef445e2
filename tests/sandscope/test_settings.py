import json
from pathlib import Path

import pytest

from collectors.config import CollectorConfig
from sandboxd.config import SandboxdSettings
from sandscope.settings import (
    Settings,
    SettingsError,
    describe,
    documented_settings,
    load_settings,
)

KEY = "e2b_0123456789abcdef0123456789abcdef"


def load(env: dict[str, str], secrets_file: Path | None = None) -> Settings:
    return load_settings(environ=env, secrets_file=secrets_file)


def write_secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load({})

    data_dir = Path("~/.local/share/sandscope").expanduser()
    assert settings == Settings(db_path=data_dir / "sandscope.duckdb")
    assert settings.e2b_api_key is None
    assert settings.e2b_api_url == "https://api.e2b.app"
    assert settings.e2b_sandbox_url is None
    assert settings.e2b_team_id is None
    assert settings.data_dir == data_dir
    assert settings.poll_interval_s == 5.0
    assert settings.request_timeout_s == 10.0
    assert settings.max_attempts == 4
    assert settings.retry_after_cap_s == 10.0
    assert settings.log_level == "INFO"


def test_every_variable_parsed(tmp_path: Path) -> None:
    settings = load(
        {
            "E2B_API_KEY": KEY,
            "E2B_API_URL": "http://127.0.0.1:3000/",
            "E2B_SANDBOX_URL": "http://127.0.0.1:49983",
            "E2B_TEAM_ID": "team-1",
            "SANDSCOPE_DATA_DIR": str(tmp_path / "data"),
            "SANDSCOPE_DB": str(tmp_path / "other.duckdb"),
            "SANDSCOPE_POLL_INTERVAL_S": "0.5",
            "SANDSCOPE_REQUEST_TIMEOUT_S": "2.5",
            "SANDSCOPE_MAX_ATTEMPTS": "1",
            "SANDSCOPE_RETRY_AFTER_CAP_S": "0",
            "SANDSCOPE_LOG_LEVEL": "debug",
        }
    )

    assert settings.e2b_api_key is not None
    assert settings.e2b_api_key.get_secret_value() == KEY
    assert settings.e2b_api_url == "http://127.0.0.1:3000"
    assert settings.e2b_sandbox_url == "http://127.0.0.1:49983"
    assert settings.e2b_team_id == "team-1"
    assert settings.data_dir == tmp_path / "data"
    assert settings.db_path == tmp_path / "other.duckdb"
    assert settings.poll_interval_s == 0.5
    assert settings.request_timeout_s == 2.5
    assert settings.max_attempts == 1
    assert settings.retry_after_cap_s == 0.0
    assert settings.log_level == "DEBUG"


def test_db_path_follows_data_dir(tmp_path: Path) -> None:
    settings = load({"SANDSCOPE_DATA_DIR": str(tmp_path)})

    assert settings.db_path == tmp_path / "sandscope.duckdb"


def test_tilde_is_expanded() -> None:
    settings = load({"SANDSCOPE_DATA_DIR": "~/x", "SANDSCOPE_DB": "~/y.duckdb"})

    assert settings.data_dir == Path.home() / "x"
    assert settings.db_path == Path.home() / "y.duckdb"


def test_empty_variable_means_default() -> None:
    settings = load({"SANDSCOPE_POLL_INTERVAL_S": "  ", "E2B_TEAM_ID": ""})

    assert settings.poll_interval_s == 5.0
    assert settings.e2b_team_id is None


@pytest.mark.parametrize(
    ("env", "value", "expectation"),
    [
        ("E2B_API_URL", "api.e2b.app", "an http:// or https:// URL"),
        ("E2B_API_URL", "ftp://api.e2b.app", "an http:// or https:// URL"),
        ("E2B_SANDBOX_URL", "localhost:49983", "an http:// or https:// URL"),
        ("SANDSCOPE_POLL_INTERVAL_S", "abc", "a number > 0"),
        ("SANDSCOPE_POLL_INTERVAL_S", "0", "a number > 0"),
        ("SANDSCOPE_POLL_INTERVAL_S", "nan", "a number > 0"),
        ("SANDSCOPE_REQUEST_TIMEOUT_S", "-1", "a number > 0"),
        ("SANDSCOPE_REQUEST_TIMEOUT_S", "inf", "a number > 0"),
        ("SANDSCOPE_MAX_ATTEMPTS", "0", "a whole number >= 1"),
        ("SANDSCOPE_MAX_ATTEMPTS", "2.5", "a whole number >= 1"),
        ("SANDSCOPE_RETRY_AFTER_CAP_S", "-0.1", "a number >= 0"),
        ("SANDSCOPE_LOG_LEVEL", "loud", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_bad_value_names_variable_and_value(env: str, value: str, expectation: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load({env: value})

    assert str(caught.value) == f"{env} must be {expectation}, got {value!r}"


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_secrets_file_read(tmp_path: Path) -> None:
    secrets = write_secrets(tmp_path, f'E2B_API_KEY = "{KEY}"\nOTHER = 1\n')

    settings = load({}, secrets)

    assert settings.e2b_api_key is not None
    assert settings.e2b_api_key.get_secret_value() == KEY


def test_env_beats_secrets_file(tmp_path: Path) -> None:
    secrets = write_secrets(tmp_path, 'E2B_API_KEY = "e2b_from_file"\n')

    settings = load({"E2B_API_KEY": KEY}, secrets)

    assert settings.e2b_api_key is not None
    assert settings.e2b_api_key.get_secret_value() == KEY


def test_only_top_level_key_counts(tmp_path: Path) -> None:
    secrets = write_secrets(tmp_path, f'[e2b]\nE2B_API_KEY = "{KEY}"\n')

    assert load({}, secrets).e2b_api_key is None


def test_missing_secrets_file_is_fine(tmp_path: Path) -> None:
    assert load({}, tmp_path / "absent.toml").e2b_api_key is None


def test_invalid_secrets_file_names_the_file(tmp_path: Path) -> None:
    secrets = write_secrets(tmp_path, f'E2B_API_KEY = "{KEY}\n')

    with pytest.raises(SettingsError) as caught:
        load({}, secrets)

    assert str(secrets) in str(caught.value)
    assert KEY not in str(caught.value)


def test_non_string_key_in_secrets_file(tmp_path: Path) -> None:
    secrets = write_secrets(tmp_path, "E2B_API_KEY = 1234\n")

    with pytest.raises(SettingsError, match=r"E2B_API_KEY in .* must be a string"):
        load({}, secrets)


@pytest.mark.parametrize("bad_key", [f"{KEY} {KEY}", f"{KEY}\nx", f"{KEY}\x00x"])
def test_bad_key_never_echoed(bad_key: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as from_env:
        load({"E2B_API_KEY": bad_key})
    secrets = write_secrets(tmp_path, f"E2B_API_KEY = {json.dumps(bad_key)}\n")
    with pytest.raises(SettingsError) as from_file:
        load({}, secrets)

    for caught in (from_env, from_file):
        assert "E2B_API_KEY" in str(caught.value)
        assert KEY not in str(caught.value)
        assert KEY not in repr(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__


def test_key_never_shown(tmp_path: Path) -> None:
    for settings in (
        load({"E2B_API_KEY": KEY}),
        load({}, write_secrets(tmp_path, f'E2B_API_KEY = "{KEY}"\n')),
    ):
        assert KEY not in repr(settings)
        assert KEY not in str(settings)
        assert KEY not in repr(describe(settings))
        assert ("E2B_API_KEY", "set") in describe(settings)


def test_describe_lists_every_setting_in_order() -> None:
    rows = describe(load({"SANDSCOPE_POLL_INTERVAL_S": "2.5"}))

    assert [env for env, _ in rows] == [doc.env for doc in documented_settings()]
    shown = dict(rows)
    assert shown["E2B_API_KEY"] == "not set"
    assert shown["E2B_TEAM_ID"] == "not set"
    assert shown["SANDSCOPE_POLL_INTERVAL_S"] == "2.5"
    assert shown["SANDSCOPE_MAX_ATTEMPTS"] == "4"


def test_documented_settings_cover_every_field() -> None:
    docs = {doc.name: doc for doc in documented_settings()}

    assert set(docs) == set(Settings.__dataclass_fields__)
    assert all(doc.env and doc.help and doc.default for doc in docs.values())
    assert docs["data_dir"].default == "~/.local/share/sandscope"
    assert docs["db_path"].default == "<data_dir>/sandscope.duckdb"
    assert docs["poll_interval_s"].default == "5"
    assert docs["e2b_api_key"].default == "not set"


def test_settings_are_frozen() -> None:
    settings = load({})

    with pytest.raises(AttributeError):
        settings.poll_interval_s = 1.0  # type: ignore[misc]


def test_the_collectors_defaults_are_the_settings_defaults() -> None:
    settings = load({})
    collector = CollectorConfig()

    for name in (
        "poll_interval_s",
        "events_interval_s",
        "slow_interval_s",
        "maintenance_interval_s",
        "raw_retention_days",
        "rollup_retention_days",
    ):
        assert getattr(settings, name) == getattr(collector, name), name


def test_sandboxd_s_data_dir_is_the_one_sandboxd_would_use(tmp_path: Path) -> None:
    # `sandscope sandboxd` and `sandscope status` started with the same SANDBOXD_DATA_DIR
    # look in the same place; SANDSCOPE_SANDBOXD_DATA_DIR, when set, wins.
    default = load({}).sandboxd_data_dir
    followed = load({"SANDBOXD_DATA_DIR": str(tmp_path / "d")}).sandboxd_data_dir
    chosen = load(
        {"SANDBOXD_DATA_DIR": str(tmp_path / "d"), "SANDSCOPE_SANDBOXD_DATA_DIR": "~/mine"}
    ).sandboxd_data_dir

    assert default == SandboxdSettings().data_dir == Path("~/.local/share/sandboxd").expanduser()
    assert followed == tmp_path / "d"
    assert chosen == Path("~/mine").expanduser()
    doc = {d.env: d for d in documented_settings()}["SANDSCOPE_SANDBOXD_DATA_DIR"]
    assert doc.default == "SANDBOXD_DATA_DIR, else ~/.local/share/sandboxd"
