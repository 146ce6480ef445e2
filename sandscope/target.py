"""Which API a command talks to: the one resolver behind `run`, `collect`, `status` and `api`.

`find_target` decides, in this order:
1. `E2B_API_KEY` is set (environment or `.streamlit/secrets.toml`): `E2B_API_URL` (E2B's cloud
   by default) with that key.
2. No key, but `E2B_API_URL` names an address: the sandboxd there, with the key it keeps in
   `SANDSCOPE_SANDBOXD_DATA_DIR`.
3. No key: the sandboxd serving from `SANDSCOPE_SANDBOXD_DATA_DIR`, found through the endpoints
   file it writes there at start (so whatever ports it took), once its /health answers.
4. Nothing found: `SandboxdToStart`. `run` starts a sandboxd there (`local_target` then
   describes it); the other commands call `require_target`, whose `TargetError` says what was
   looked for and how to fix it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sandscope.local_sandboxd import (
    LocalSandboxd,
    NotRunning,
    probe_running,
    read_team_id,
    sandboxd_key_file,
)
from sandscope.settings import CLOUD_API_URL, Settings


class TargetError(Exception):
    """No API to talk to: the message says what was looked for and what to set or start."""


class TargetSource(enum.Enum):
    """Where a target came from."""

    SETTINGS = "settings"  # E2B_API_KEY / E2B_API_URL
    RUNNING_SANDBOXD = "running sandboxd"  # found through its endpoints file
    STARTED_SANDBOXD = "started sandboxd"  # started by this `run`


@dataclass(frozen=True, kw_only=True)
class Target:
    """An API to talk to: its URLs, the key and team to use, and where it came from."""

    api_url: str
    sandbox_url: str | None  # envd, which the E2B SDK (and the demo) talk to
    api_key: SecretStr | None  # None only for a call that needs none (`api health`)
    team_id: str | None  # None: the client learns it from a lifecycle event
    source: TargetSource
    found_through: Path | None = None  # the endpoints or key file that named it
    concurrency_limit: int | None = None

    @property
    def is_local_sandboxd(self) -> bool:
        """True for a sandboxd of this machine found or started through its data directory."""
        return self.source is not TargetSource.SETTINGS

    def describe(self) -> str:
        """Where the API is, in words: `E2B's cloud at https://api.e2b.app`,
        `the local sandboxd at <url> (found through <endpoints file>)`, ..."""
        if self.source is TargetSource.STARTED_SANDBOXD:
            return f"the local sandboxd at {self.api_url} (started here)"
        if self.source is TargetSource.RUNNING_SANDBOXD:
            return f"the local sandboxd at {self.api_url} (found through {self.found_through})"
        where = "E2B's cloud" if self.api_url == CLOUD_API_URL else "the E2B API"
        if self.found_through is not None:
            return (
                f"the sandboxd at {self.api_url} (E2B_API_URL) with the key in {self.found_through}"
            )
        if self.api_key is None:
            return f"{where} at {self.api_url} (without an API key)"
        return f"{where} at {self.api_url}"

    def applied_to(self, settings: Settings) -> Settings:
        """`settings` with this target's URLs, key, team and concurrency limit, which the
        clients (`sandscope.clients`) and the collector read."""
        return dataclasses.replace(
            settings,
            e2b_api_key=self.api_key,
            e2b_api_url=self.api_url,
            e2b_sandbox_url=self.sandbox_url,
            e2b_team_id=self.team_id,
            concurrency_limit=self.concurrency_limit,
        )


@dataclass(frozen=True)
class SandboxdToStart:
    """No API found: `run` starts a sandboxd on `data_dir`; `why` says why none was used."""

    data_dir: Path
    why: str


def find_target(settings: Settings, *, key_needed: bool = True) -> Target | SandboxdToStart:
    """The API to talk to (see the module's docstring), or the sandboxd `run` should start.

    With `key_needed` False (a health check) a missing key is no error: the target has none.
    Raises TargetError when `E2B_API_URL` is set without a key and sandboxd's key is not
    readable."""
    if settings.e2b_api_key is not None:
        return _from_settings(settings, settings.e2b_api_key)
    data_dir = settings.sandboxd_data_dir
    if settings.e2b_api_url != CLOUD_API_URL:
        return _at_api_url(settings, key_needed)
    try:
        running = probe_running(data_dir)
    except NotRunning as why:
        if not key_needed:
            return _from_settings(settings, None)
        return SandboxdToStart(data_dir, str(why))
    return Target(
        api_url=running.api_url,
        sandbox_url=settings.e2b_sandbox_url or running.envd_url,
        api_key=SecretStr(running.api_key),
        team_id=settings.e2b_team_id or running.team_id,
        source=TargetSource.RUNNING_SANDBOXD,
        found_through=running.endpoints_file,
        concurrency_limit=settings.concurrency_limit,
    )


def require_target(settings: Settings, *, key_needed: bool = True) -> Target:
    """`find_target`'s API; TargetError where `run` would start a sandboxd: the other
    commands only use an API that is up."""
    found = find_target(settings, key_needed=key_needed)
    if isinstance(found, SandboxdToStart):
        raise TargetError(
            f"E2B_API_KEY is not set and no sandboxd serves from {found.data_dir}: {found.why}. "
            "Start one (`sandscope run` or `sandscope sandboxd`), point "
            "SANDSCOPE_SANDBOXD_DATA_DIR (or SANDBOXD_DATA_DIR) at the data directory of the "
            "one running, or set E2B_API_KEY (and E2B_API_URL) to use E2B"
        )
    return found


def local_target(sandboxd: LocalSandboxd, settings: Settings) -> Target:
    """The target of a sandboxd `run` started (or found again when about to start one);
    its concurrency limit is sandboxd's unless SANDSCOPE_CONCURRENCY_LIMIT says otherwise."""
    return Target(
        api_url=sandboxd.api_url,
        sandbox_url=sandboxd.envd_url,
        api_key=SecretStr(sandboxd.api_key),
        team_id=settings.e2b_team_id or sandboxd.team_id,
        source=(
            TargetSource.STARTED_SANDBOXD
            if sandboxd.started_here
            else TargetSource.RUNNING_SANDBOXD
        ),
        found_through=None if sandboxd.started_here else sandboxd.endpoints_file,
        concurrency_limit=settings.concurrency_limit or sandboxd.max_sandboxes,
    )


def _from_settings(settings: Settings, api_key: SecretStr | None) -> Target:
    return Target(
        api_url=settings.e2b_api_url,
        sandbox_url=settings.e2b_sandbox_url,
        api_key=api_key,
        team_id=settings.e2b_team_id,
        source=TargetSource.SETTINGS,
        concurrency_limit=settings.concurrency_limit,
    )


def _at_api_url(settings: Settings, key_needed: bool) -> Target:
    """A sandboxd at E2B_API_URL with the key it keeps in its data directory."""
    key_file = sandboxd_key_file(settings.sandboxd_data_dir)
    try:
        key = key_file.read_text().strip()
    except OSError as unreadable:
        if not key_needed:
            return _from_settings(settings, None)
        raise TargetError(
            f"E2B_API_KEY is not set and the key of the sandboxd at {settings.e2b_api_url} "
            f"(E2B_API_URL) is not readable at {key_file} ({unreadable.strerror}): set "
            "E2B_API_KEY, or point SANDSCOPE_SANDBOXD_DATA_DIR at that sandboxd's data directory"
        ) from None
    return dataclasses.replace(
        _from_settings(settings, SecretStr(key)),
        team_id=settings.e2b_team_id or read_team_id(settings.sandboxd_data_dir),
        found_through=key_file,
    )
