"""A sandbox's details, and how the API shows them (every field the SDK requires)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SandboxState = Literal["running", "paused", "killed"]

# The SDK insists on these (docs/E2B-API.md, "Fields the SDK requires"): a fixed client
# ID and a modern envd version.
CLIENT_ID = "6532622b"
ENVD_VERSION = "0.6.4"


def iso(when: datetime) -> str:
    """RFC 3339 in UTC with a Z, as E2B writes times."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SandboxRecord:
    """Everything sandboxd knows about one sandbox. Times are UTC."""

    sandbox_id: str
    template_id: str
    alias: str
    build_id: str
    cpu_count: int
    memory_mb: int
    disk_size_mb: int
    started_at: datetime
    end_at: datetime
    state: SandboxState = "running"
    metadata: dict[str, str] = field(default_factory=dict)
    auto_pause: bool = False
    secure: bool = False
    # Every box has one, whatever `secure` says: envd answers nobody without it. Kept in
    # memory only; the store gets its SHA-256 (`to_json`), so a copy of the store file
    # opens no box.
    access_token: str | None = field(default=None, repr=False)
    access_token_sha256: str | None = None
    allow_internet_access: bool | None = None
    execution_id: str = ""
    isolation: str = "full"
    oom_kills: int = 0
    ended_at: datetime | None = None
    kill_reason: str | None = None

    def listed(self) -> dict[str, Any]:
        """As `GET /v2/sandboxes` lists it (ListedSandbox)."""
        return {
            "templateID": self.template_id,
            "alias": self.alias,
            "sandboxID": self.sandbox_id,
            "clientID": CLIENT_ID,
            "startedAt": iso(self.started_at),
            "endAt": iso(self.end_at),
            "cpuCount": self.cpu_count,
            "memoryMB": self.memory_mb,
            "diskSizeMB": self.disk_size_mb,
            "metadata": self.metadata,
            "state": "paused" if self.state == "paused" else "running",
            "envdVersion": ENVD_VERSION,
        }

    def detail(self, isolation_note: str) -> dict[str, Any]:
        """As `GET /sandboxes/{id}` describes it (SandboxDetail), plus sandboxd's notes."""
        detail = self.listed()
        if self.access_token is not None:
            detail["envdAccessToken"] = self.access_token
        detail.update(
            {
                "allowInternetAccess": self.allow_internet_access,
                "domain": None,
                "lifecycle": {
                    "autoResume": False,
                    "onTimeout": "pause" if self.auto_pause else "kill",
                },
                # sandboxd's own fields; E2B clients ignore what they do not know.
                "isolation": isolation_note,
                "oomKills": self.oom_kills,
            }
        )
        return detail

    def created(self) -> dict[str, Any]:
        """As create and connect answer (Sandbox)."""
        body: dict[str, Any] = {
            "templateID": self.template_id,
            "sandboxID": self.sandbox_id,
            "alias": self.alias,
            "clientID": CLIENT_ID,
            "envdVersion": ENVD_VERSION,
            # What a secured box's ports want as `e2b-traffic-access-token` (sandboxd/ports.py).
            "trafficAccessToken": self.access_token if self.secure else None,
            "domain": None,
        }
        if self.access_token is not None:
            body["envdAccessToken"] = self.access_token
        return body

    def to_json(self) -> dict[str, Any]:
        """For the store: everything but the access token, which only its hash stands for."""
        data = asdict(self)
        token = data.pop("access_token")
        if token is not None:
            data["access_token_sha256"] = token_sha256(token)
        for name in ("started_at", "end_at", "ended_at"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxRecord:
        """From the store (without a token: a stored sandbox is never reachable again). A
        record stored before tokens were hashed keeps only the hash of its token."""
        data = dict(data)
        if (token := data.pop("access_token", None)) is not None:
            data["access_token_sha256"] = token_sha256(token)
        for name in ("started_at", "end_at", "ended_at"):
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        return cls(**data)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of an access token, as the store keeps it."""
    return hashlib.sha256(token.encode()).hexdigest()
