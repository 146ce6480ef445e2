"""What the agent's answers and events become on the host side.

Errors, one line each:
    AgentError     a request failed inside the sandbox; `code` is the agent's error code
                   (not_found, already_exists, permission_denied, invalid_argument,
                   failed_precondition, resource_exhausted, internal) or one of the two below
    AgentClosed    the agent's channel ended (the sandbox ended): code "unavailable"
    (timeouts)     an AgentError with code "deadline_exceeded"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StreamName = Literal["stdout", "stderr", "pty"]


class AgentError(Exception):
    """A request to the agent failed; `code` says how (see the module docstring)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class AgentClosed(AgentError):
    """The agent's stdout ended: the sandbox is gone."""

    def __init__(self, message: str = "the sandbox agent has exited") -> None:
        super().__init__("unavailable", message)


@dataclass(frozen=True)
class Data:
    """A chunk of a process's output, as the process wrote it."""

    stream: StreamName
    data: bytes


@dataclass(frozen=True)
class End:
    """How a process ended, worded like Go's os.ProcessState (as envd reports it).

    `exit_code` is -1 when a signal ended it; `signal` is then Go's name for it
    ("killed", "terminated") and `signal_number` its number. `status` reads
    "exit status 1" or "signal: killed"; `error` repeats it unless the exit was clean.
    """

    exit_code: int
    exited: bool
    status: str
    signal: str | None = None
    signal_number: int | None = None
    error: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> End:
        return cls(
            exit_code=int(event["exit_code"]),
            exited=bool(event["exited"]),
            status=str(event["status"]),
            signal=event.get("signal"),
            signal_number=event.get("signal_number"),
            error=event.get("error"),
        )


ProcessEvent = Data | End


@dataclass(frozen=True)
class ProcessInfo:
    """A running process the agent started (its request, as given)."""

    pid: int
    cmd: str
    args: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    tag: str | None = None
    pty: bool = False

    @classmethod
    def from_result(cls, item: dict[str, Any]) -> ProcessInfo:
        return cls(
            pid=int(item["pid"]),
            cmd=str(item["cmd"]),
            args=list(item.get("args") or []),
            envs=dict(item.get("envs") or {}),
            cwd=item.get("cwd"),
            tag=item.get("tag"),
            pty=bool(item.get("pty")),
        )


@dataclass(frozen=True)
class EntryInfo:
    """A file system entry. A symlink has its target's `type` and `mode`, with
    `is_symlink` set; `type` is "file", "dir", "symlink" (dangling) or "other".
    `mode` holds the permission bits; `mtime_ns` is nanoseconds since the epoch (UTC)."""

    name: str
    path: str
    type: str
    size: int
    mode: int
    permissions: str
    owner: str
    group: str
    mtime_ns: int
    is_symlink: bool = False
    symlink_target: str | None = None

    @classmethod
    def from_result(cls, item: dict[str, Any]) -> EntryInfo:
        return cls(
            name=str(item["name"]),
            path=str(item["path"]),
            type=str(item["type"]),
            size=int(item["size"]),
            mode=int(item["mode"]),
            permissions=str(item["permissions"]),
            owner=str(item["owner"]),
            group=str(item["group"]),
            mtime_ns=int(item["mtime_ns"]),
            is_symlink=bool(item.get("is_symlink")),
            symlink_target=item.get("symlink_target"),
        )


@dataclass(frozen=True)
class ProcessStarted:
    """Hook event: a process was started through this client."""

    pid: int
    cmd: str
    args: list[str]
    tag: str | None


@dataclass(frozen=True)
class ProcessEnded:
    """Hook event: a process ended; `cmd` is None when another client started it."""

    pid: int
    cmd: str | None
    end: End


AgentEvent = ProcessStarted | ProcessEnded
