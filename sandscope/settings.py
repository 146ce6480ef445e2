"""sandscope's configuration, read once from environment variables.

Every setting is a field of `Settings`, declared once with its environment
variable, its default and one line of help (in the field's metadata), so the
README table and `describe()` are derived from the same declaration.

Rules that apply to every variable:
- An unset or empty (whitespace-only) variable means "use the default".
- A bad value raises `SettingsError`, whose message names the variable and the
  value it got; secrets are named but their value is never echoed.
- `E2B_API_KEY` may also come from the top-level `E2B_API_KEY` of Streamlit's
  `.streamlit/secrets.toml`; the environment wins when both are set.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

from pydantic import SecretStr

from collectors.config import CollectorConfig
from dashboard.serving.auth import DEFAULT_SESSION_IDLE_S
from sandboxd.config import SandboxdSettings

DEFAULT_SECRETS_FILE = Path(".streamlit/secrets.toml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CLOUD_API_URL = "https://api.e2b.app"

_DEFAULT_DATA_DIR = "~/.local/share/sandscope"
_DB_FILE_NAME = "sandscope.duckdb"
# Defaults declared elsewhere, once: the collectors' intervals and retention in
# `collectors.config`, sandboxd's data directory in `sandboxd.config`.
_COLLECTOR_DEFAULTS = CollectorConfig()
_SANDBOXD_DATA_DIR_FIELD = next(
    f for f in dataclasses.fields(SandboxdSettings) if f.name == "data_dir"
)
_SANDBOXD_DATA_DIR_ENV = str(_SANDBOXD_DATA_DIR_FIELD.metadata["env"])
_parse_sandboxd_data_dir = cast(Callable[[str], Path], _SANDBOXD_DATA_DIR_FIELD.metadata["parse"])


class SettingsError(ValueError):
    """A setting has a value sandscope cannot use; the message names the variable."""


class SettingDoc(NamedTuple):
    """One setting as the README documents it."""

    name: str  # attribute on Settings
    env: str  # environment variable
    default: str  # default, as text
    help: str  # one line


# Parsers turn a non-empty raw value into the field's value. They raise
# ValueError whose message completes "<VAR> must be ...", so the loader builds
# every error message the same way (and can leave the value out for secrets).


def _api_key(raw: str) -> SecretStr:
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise ValueError("a single token without spaces or control characters")
    return SecretStr(raw)


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http:// or https:// URL")
    return raw.rstrip("/")


def _text(raw: str) -> str:
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _float_at_least(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    expectation = f"a number {'>=' if inclusive else '>'} {minimum:g}"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(expectation) from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise ValueError(expectation)
        return value

    return parse


def _int_at_least(minimum: int) -> Callable[[str], int]:
    expectation = f"a whole number >= {minimum}"

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(expectation) from None
        if value < minimum:
            raise ValueError(expectation)
        return value

    return parse


_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


def _bool(raw: str) -> bool:
    word = raw.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"one of {', '.join(_TRUE_WORDS + _FALSE_WORDS)}")


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ValueError("a port number from 0 to 65535 (0 picks a free port)")
    return int(raw)


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"one of {', '.join(LOG_LEVELS)}")
    return level


def _home_relative(path: Path) -> str:
    """`path` as the docs show it: `~/...` when it is under the home directory."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


_SANDBOXD_DEFAULT_DIR_TEXT = _home_relative(SandboxdSettings().data_dir)


def _meta(
    env: str,
    help: str,
    parse: Callable[[str], object],
    *,
    default_text: str | None = None,
    secret: bool = False,
) -> dict[str, Any]:
    """Field metadata: `default_text` overrides the default shown in docs."""
    return {
        "env": env,
        "help": help,
        "parse": parse,
        "default_text": default_text,
        "secret": secret,
    }


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    """sandscope's configuration. Build it with `load_settings()`.

    `db_path` has no static default (it follows `data_dir`), so code that builds
    `Settings` by hand passes it explicitly.
    """

    e2b_api_key: SecretStr | None = field(
        default=None,
        metadata=_meta(
            "E2B_API_KEY",
            "E2B API key; also read from `.streamlit/secrets.toml` (the environment wins).",
            _api_key,
            secret=True,
        ),
    )
    e2b_api_url: str = field(
        default=CLOUD_API_URL,
        metadata=_meta("E2B_API_URL", "Base URL of the E2B API (or of sandboxd).", _http_url),
    )
    e2b_sandbox_url: str | None = field(
        default=None,
        metadata=_meta(
            "E2B_SANDBOX_URL",
            "envd URL the official E2B SDK uses against a local runtime.",
            _http_url,
        ),
    )
    e2b_team_id: str | None = field(
        default=None,
        metadata=_meta("E2B_TEAM_ID", "E2B team whose metrics are collected.", _text),
    )
    data_dir: Path = field(
        default_factory=lambda: Path(_DEFAULT_DATA_DIR).expanduser(),
        metadata=_meta(
            "SANDSCOPE_DATA_DIR",
            "Directory for sandscope's data; `~` is expanded.",
            _path,
            default_text=_DEFAULT_DATA_DIR,
        ),
    )
    db_path: Path = field(
        metadata=_meta(
            "SANDSCOPE_DB",
            "DuckDB file; only one process can have it open.",
            _path,
            default_text=f"<data_dir>/{_DB_FILE_NAME}",
        ),
    )
    poll_interval_s: float = field(
        default=_COLLECTOR_DEFAULTS.poll_interval_s,
        metadata=_meta(
            "SANDSCOPE_POLL_INTERVAL_S",
            "Seconds between metric polls.",
            _float_at_least(0, inclusive=False),
        ),
    )
    events_interval_s: float = field(
        default=_COLLECTOR_DEFAULTS.events_interval_s,
        metadata=_meta(
            "SANDSCOPE_EVENTS_INTERVAL_S",
            "Seconds between reads of the team's lifecycle events.",
            _float_at_least(0, inclusive=False),
        ),
    )
    slow_interval_s: float = field(
        default=_COLLECTOR_DEFAULTS.slow_interval_s,
        metadata=_meta(
            "SANDSCOPE_SLOW_INTERVAL_S",
            "Seconds between reads of team maxima, templates and webhooks.",
            _float_at_least(0, inclusive=False),
        ),
    )
    maintenance_interval_s: float = field(
        default=_COLLECTOR_DEFAULTS.maintenance_interval_s,
        metadata=_meta(
            "SANDSCOPE_MAINTENANCE_INTERVAL_S",
            "Seconds between per-minute rollups and retention clean-ups of the store.",
            _float_at_least(0, inclusive=False),
        ),
    )
    raw_retention_days: float = field(
        default=_COLLECTOR_DEFAULTS.raw_retention_days,
        metadata=_meta(
            "SANDSCOPE_RAW_RETENTION_DAYS",
            "Days raw 5 s samples are kept.",
            _float_at_least(0, inclusive=False),
        ),
    )
    rollup_retention_days: float = field(
        default=_COLLECTOR_DEFAULTS.rollup_retention_days,
        metadata=_meta(
            "SANDSCOPE_ROLLUP_RETENTION_DAYS",
            "Days per-minute rollups (maximum and mean) are kept.",
            _float_at_least(0, inclusive=False),
        ),
    )
    sandboxd_data_dir: Path = field(
        default_factory=lambda: _sandboxd_default_data_dir(),
        metadata=_meta(
            "SANDSCOPE_SANDBOXD_DATA_DIR",
            "sandboxd's data directory: without E2B_API_KEY, commands find a running sandboxd "
            "through the endpoints file it writes there, and `run` starts one there.",
            _path,
            default_text=f"{_SANDBOXD_DATA_DIR_ENV}, else {_SANDBOXD_DEFAULT_DIR_TEXT}",
        ),
    )
    request_timeout_s: float = field(
        default=10.0,
        metadata=_meta(
            "SANDSCOPE_REQUEST_TIMEOUT_S",
            "Seconds before an API request times out.",
            _float_at_least(0, inclusive=False),
        ),
    )
    max_attempts: int = field(
        default=4,
        metadata=_meta(
            "SANDSCOPE_MAX_ATTEMPTS",
            "Attempts per API call for retryable failures (1 = no retries).",
            _int_at_least(1),
        ),
    )
    retry_after_cap_s: float = field(
        default=10.0,
        metadata=_meta(
            "SANDSCOPE_RETRY_AFTER_CAP_S",
            "Longest Retry-After (s) waited out in-line; longer ones go to the caller.",
            _float_at_least(0, inclusive=True),
        ),
    )
    dashboard_address: str = field(
        default="127.0.0.1",
        metadata=_meta(
            "SANDSCOPE_ADDRESS",
            "Address the dashboard listens on; anything but loopback needs logins in "
            "`.streamlit/secrets.toml`.",
            _text,
        ),
    )
    dashboard_port: int = field(
        default=8501,
        metadata=_meta("SANDSCOPE_PORT", "Port the dashboard listens on.", _port),
    )
    session_idle_s: float = field(
        default=DEFAULT_SESSION_IDLE_S,
        metadata=_meta(
            "SANDSCOPE_SESSION_IDLE_S",
            "Seconds a signed-in dashboard session may stay idle before it signs out "
            "(live refreshes are not activity).",
            _float_at_least(0, inclusive=False),
        ),
    )
    read_only: bool = field(
        default=False,
        metadata=_meta(
            "SANDSCOPE_READ_ONLY",
            "Hide pause, resume, extend and delete: the dashboard only reads.",
            _bool,
        ),
    )
    demo: bool = field(
        default=True,
        metadata=_meta(
            "SANDSCOPE_DEMO",
            "With the local sandboxd, `run` starts the demo sandboxes (`--no-demo` turns it off).",
            _bool,
        ),
    )
    concurrency_limit: int | None = field(
        default=None,
        metadata=_meta(
            "SANDSCOPE_CONCURRENCY_LIMIT",
            "The team's concurrent-sandbox limit drawn on the overview (E2B's API does not "
            "report it: 20 on Hobby, 100 on Pro); `run` fills it in for the local sandboxd.",
            _int_at_least(1),
        ),
    )
    # Assumed defaults: E2B's published per-second prices as we recall them ($0.000014 per
    # vCPU-s, $0.0000045 per GiB-s); the reference material has no pricing, so check
    # e2b.dev/pricing (docs/TEMPLATE-FIT.md).
    cost_per_vcpu_hour: float = field(
        default=0.0504,
        metadata=_meta(
            "SANDSCOPE_COST_PER_VCPU_HOUR",
            "Estimated cost of one vCPU-hour on the Templates page (assumed from E2B's "
            "published $0.000014 per vCPU-second; check e2b.dev/pricing).",
            _float_at_least(0, inclusive=True),
        ),
    )
    cost_per_gib_hour: float = field(
        default=0.0162,
        metadata=_meta(
            "SANDSCOPE_COST_PER_GIB_HOUR",
            "Estimated cost of one GiB-hour of memory on the Templates page (assumed from "
            "E2B's published $0.0000045 per GiB-second; check e2b.dev/pricing).",
            _float_at_least(0, inclusive=True),
        ),
    )
    log_level: str = field(
        default="INFO",
        metadata=_meta(
            "SANDSCOPE_LOG_LEVEL",
            f"Logging level: {', '.join(LOG_LEVELS)}.",
            _log_level,
        ),
    )


def load_settings(
    environ: Mapping[str, str] = os.environ,
    secrets_file: Path | None = DEFAULT_SECRETS_FILE,
) -> Settings:
    """Read every setting from `environ`, and the API key also from `secrets_file`.

    Raises SettingsError on the first bad value or an unreadable secrets file.
    """
    secrets: Mapping[str, object] | None = None
    values: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        env = _env(f)
        raw = environ.get(env, "").strip()
        source = env
        if not raw and f.metadata["secret"]:
            if secrets is None:
                secrets = _read_secrets(secrets_file)
            raw, source = _secret_from_file(secrets, env, secrets_file)
        if raw:
            values[f.name] = _parse(f, raw, source)
    if "sandboxd_data_dir" not in values:
        # The directory `sandscope sandboxd` would use in this environment, so that every
        # command started beside it finds it.
        raw = environ.get(_SANDBOXD_DATA_DIR_ENV, "").strip()
        values["sandboxd_data_dir"] = (
            _parse_sandboxd_data_dir(raw) if raw else _sandboxd_default_data_dir()
        )
    if "db_path" not in values:
        data_dir = values.get("data_dir", Path(_DEFAULT_DATA_DIR).expanduser())
        values["db_path"] = cast(Path, data_dir) / _DB_FILE_NAME
    return Settings(**cast(dict[str, Any], values))


def _sandboxd_default_data_dir() -> Path:
    """sandboxd's own default data directory (`sandboxd.config`), `~` expanded."""
    return SandboxdSettings().data_dir


def documented_settings() -> list[SettingDoc]:
    """Every setting in declaration order, with its default as the README shows it."""
    docs: list[SettingDoc] = []
    for f in dataclasses.fields(Settings):
        default_text = f.metadata["default_text"]
        if default_text is None:
            default_text = _display(f.default)
        docs.append(SettingDoc(f.name, _env(f), str(default_text), str(f.metadata["help"])))
    return docs


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(environment variable, value as text) per setting; secrets show only set / not set."""
    rows: list[tuple[str, str]] = []
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        # A secret shows only whether it is set; _display(None) says "not set".
        shown = "set" if f.metadata["secret"] and value is not None else _display(value)
        rows.append((_env(f), shown))
    return rows


def _env(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata["env"])


def _parse(f: dataclasses.Field[Any], raw: str, source: str) -> object:
    parse = cast(Callable[[str], object], f.metadata["parse"])
    try:
        return parse(raw)
    except ValueError as exc:
        if f.metadata["secret"]:
            raise SettingsError(f"{source} must be {exc}") from None
        raise SettingsError(f"{source} must be {exc}, got {raw!r}") from None


def _read_secrets(secrets_file: Path | None) -> Mapping[str, object]:
    if secrets_file is None or not secrets_file.is_file():
        return {}
    try:
        with secrets_file.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise SettingsError(f"cannot read {secrets_file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message gives a position, never the file's content.
        raise SettingsError(f"{secrets_file} is not valid TOML: {exc}") from None


def _secret_from_file(
    secrets: Mapping[str, object], key: str, secrets_file: Path | None
) -> tuple[str, str]:
    """(raw value or "", name to use in error messages) for `key` in the secrets file."""
    source = f"{key} in {secrets_file}"
    value = secrets.get(key)
    if value is None:
        return "", source
    if not isinstance(value, str):
        raise SettingsError(f"{source} must be a string")
    return value.strip(), source


def _display(value: object) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):  # as the variable is written: "true" / "false"
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
