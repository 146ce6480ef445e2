"""sandboxd's settings, read once from SANDBOXD_* environment variables."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value sandboxd cannot use; the message names the variable."""


def _setting(env: str, help: str, parse: Callable[[str], object], **kwargs: Any) -> Any:
    return field(metadata={"env": env, "help": help, "parse": parse}, **kwargs)


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("a port number 0..65535")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("a whole number >= 1")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("a number > 0")
    return value


def _sample_interval(raw: str) -> float:
    # Samples are stamped in whole Unix seconds, as E2B's are: two samples a second would
    # share a stamp, and a reader could not tell which came last.
    value = float(raw)
    if not value >= 1:
        raise ValueError("a number of seconds >= 1 (samples are stamped in whole seconds)")
    return value


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("1/true/yes or 0/false/no")


def is_loopback(host: str) -> bool:
    """Whether `host` is an address (or the name localhost) only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def _host_uid_base(raw: str) -> int:
    # Box uids must be unprivileged (not root, not a system account) and valid: the
    # full level's 1,024 ranges of 65,536 ids (2**26) from the base must end below
    # 2**32 - 1, which is "no uid" to the kernel.
    value = int(raw)
    if not 1000 <= value <= 2**32 - 2 - 2**26:
        raise ValueError("an unprivileged uid, 1000 or more (and at most 4227858430)")
    return value


def _isolation(raw: str) -> str:
    if raw not in ("auto", "reduced"):
        raise ValueError("'auto' or 'reduced'")
    return raw


@dataclass(frozen=True, kw_only=True)
class SandboxdSettings:
    """Every setting, declared once: environment variable, default, one line of help."""

    host: str = _setting(
        "SANDBOXD_HOST",
        "Address both servers listen on (a loopback address unless "
        "SANDBOXD_ALLOW_PUBLIC_HOST is set).",
        str,
        default="127.0.0.1",
    )
    allow_public_host: bool = _setting(
        "SANDBOXD_ALLOW_PUBLIC_HOST",
        "Set to 1 to let SANDBOXD_HOST be a non-loopback address (other machines could "
        "then reach the API and envd; keep a firewall in front).",
        _flag,
        default=False,
    )
    allow_shared_user: bool = _setting(
        "SANDBOXD_ALLOW_SHARED_USER",
        "Set to 1 to let boxes run as sandboxd's own user when sandboxd is not root and "
        "bwrap cannot make a user namespace (box code could then read the API key and the "
        "store: for a developer's own machine only).",
        _flag,
        default=False,
    )
    api_port: int = _setting(
        "SANDBOXD_API_PORT",
        "Port of the control-plane API (0: any free port).",
        _port,
        default=3000,
    )
    envd_port: int = _setting(
        "SANDBOXD_ENVD_PORT",
        "Port of envd, the in-sandbox API (0: any free port).",
        _port,
        default=49983,
    )
    ports_port: int = _setting(
        "SANDBOXD_PORTS_PORT",
        "Port that serves sandbox.get_host(port) names, <port>-<id>.sandbox.localhost "
        "(0: any free port, so that sandboxd started on free ports never collides); "
        "sandboxd prints the E2B_DOMAIN to set, sandbox.localhost:<this port>.",
        _port,
        default=0,
    )
    # _setting is dataclasses.field with metadata; ruff cannot see through the wrapper.
    data_dir: Path = _setting(  # noqa: RUF009
        "SANDBOXD_DATA_DIR",
        "Directory for the API key, the store and sandbox disks.",
        lambda raw: Path(raw).expanduser(),
        default_factory=lambda: Path("~/.local/share/sandboxd").expanduser(),
    )
    team_id: str | None = _setting(
        "SANDBOXD_TEAM_ID",
        "Team ID (a UUID) of every sandbox; made at first start if unset.",
        str,
        default=None,
    )
    max_sandboxes: int = _setting(
        "SANDBOXD_MAX_SANDBOXES",
        "Concurrent running sandboxes; past it, create answers 429.",
        _positive_int,
        default=20,
    )
    max_length_s: int = _setting(
        "SANDBOXD_MAX_LENGTH_S",
        "Longest life of a sandbox from its start, in seconds.",
        _positive_int,
        default=3600,
    )
    max_processes: int = _setting(
        "SANDBOXD_MAX_PROCESSES",
        "Processes (and threads) one sandbox may run at once.",
        _positive_int,
        default=256,
    )
    isolation: str = _setting(
        "SANDBOXD_ISOLATION",
        "'auto' (the strongest this machine allows) or 'reduced'.",
        _isolation,
        default="auto",
    )
    cgroup_parent: str = _setting(
        "SANDBOXD_CGROUP_PARENT",
        "Cgroup (under each hierarchy) that holds the sandboxes.",
        str,
        default="sandboxd",
    )
    host_uid_base: int = _setting(
        "SANDBOXD_HOST_UID_BASE",
        "First unprivileged host uid given to sandboxes (never root): full isolation gives"
        " each box 65,536 ids from here (1,024 boxes), reduced isolation one uid each.",
        _host_uid_base,
        default=200000,
    )
    sample_interval_s: float = _setting(
        "SANDBOXD_SAMPLE_INTERVAL_S",
        "Seconds between usage samples (1 or more: samples are stamped in whole seconds).",
        _sample_interval,
        default=5.0,
    )
    box_internet: bool = _setting(
        "SANDBOXD_BOX_INTERNET",
        "Set to 0 to keep every box off the network (only its own loopback), whatever "
        "allow_internet_access says; 1 gives boxes outbound IPv4 through slirp4netns, never "
        "to host or private addresses.",
        _flag,
        default=True,
    )
    retention_days: float = _setting(
        "SANDBOXD_RETENTION_DAYS",
        "Days of metrics, logs and events kept.",
        _positive_float,
        default=7.0,
    )
    max_templates: int = _setting(
        "SANDBOXD_MAX_TEMPLATES",
        "Templates the team may create (the built-in ones not counted); past it, 400.",
        _positive_int,
        default=50,
    )
    max_template_upload_mb: int = _setting(
        "SANDBOXD_MAX_TEMPLATE_UPLOAD_MB",
        "Largest build-context upload (one COPY's tar) in MiB; a bigger one is cut off (413).",
        _positive_int,
        default=1024,
    )
    max_concurrent_builds: int = _setting(
        "SANDBOXD_MAX_CONCURRENT_BUILDS",
        "Template builds that run at once; the others wait in the queue.",
        _positive_int,
        default=1,
    )
    build_timeout_s: int = _setting(
        "SANDBOXD_BUILD_TIMEOUT_S",
        "Longest run of one template build, in seconds; past it the build fails.",
        _positive_int,
        default=1800,
    )
    max_layer_mb: int = _setting(
        "SANDBOXD_MAX_LAYER_MB",
        "Largest layer a build keeps (its box's home directory, as a tar) in MiB.",
        _positive_int,
        default=512,
    )

    @property
    def key_file(self) -> Path:
        """The API key, readable only by its owner."""
        return self.data_dir / "api_key"

    @property
    def team_id_file(self) -> Path:
        """The team ID made at the first start (when SANDBOXD_TEAM_ID is not set)."""
        return self.data_dir / "team_id"

    @property
    def templates_dir(self) -> Path:
        """Uploaded build contexts and built layers (sandboxd/templates/)."""
        return self.data_dir / "templates"

    @property
    def store_file(self) -> Path:
        """sandboxd's own SQLite store."""
        return self.data_dir / "sandboxd.sqlite3"


def load_settings(environ: Mapping[str, str] = os.environ) -> SandboxdSettings:
    """Read every SANDBOXD_* variable; unset or empty means the default."""
    values: dict[str, object] = {}
    for setting in dataclasses.fields(SandboxdSettings):
        env = setting.metadata["env"]
        raw = environ.get(env, "").strip()
        if not raw:
            continue
        try:
            values[setting.name] = setting.metadata["parse"](raw)
        except ValueError as bad:
            detail = str(bad) if "invalid literal" not in str(bad) else "a number"
            raise ConfigError(f"{env} must be {detail}, got {raw!r}") from None
    settings = SandboxdSettings(**values)  # type: ignore[arg-type]
    _check_host(settings)
    return settings


def _check_host(settings: SandboxdSettings) -> None:
    """ConfigError for a non-loopback host unless allowed: the API key and the boxes'
    tokens travel in clear HTTP, and envd runs code, so other machines stay out unless
    the operator says otherwise."""
    if is_loopback(settings.host) or settings.allow_public_host:
        return
    raise ConfigError(
        f"SANDBOXD_HOST={settings.host!r} is not a loopback address: other machines could "
        "reach the API and run code in sandboxes over plain HTTP. Use 127.0.0.1, or set "
        "SANDBOXD_ALLOW_PUBLIC_HOST=1 to allow it (behind a firewall or TLS proxy)."
    )


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default as text, help) per setting, for the README."""
    rows = []
    for setting in dataclasses.fields(SandboxdSettings):
        if setting.default is not dataclasses.MISSING:
            default = "not set" if setting.default is None else str(setting.default)
        else:
            default = "~/.local/share/sandboxd"
        rows.append((setting.metadata["env"], default, setting.metadata["help"]))
    return rows
