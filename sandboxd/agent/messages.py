"""What the agent's answers and events become on the host side.

Errors, one line each:
    AgentError     a request failed inside the sandbox; `code` is the agent's error code
                   (not_found, already_exists, permission_denied, invalid_argument,
                   failed_precondition, resource_exhausted, internal) or one of the two below
    AgentClosed    the agent's channel ended (the sandbox ended): code "unavailable"
    (timeouts)     an AgentError with code "deadline_exceeded"
    ProtocolViolation  (not an AgentError) the agent's stream broke the protocol; the channel
                   stops reading it, and the sandbox is killed with the reason recorded

Everything the agent says is untrusted: code in the box might have found a way to write for
it. So events are parsed strictly here, every field checked for type, range and length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, get_args

from sandboxd.agent.metadata import checked_metadata

StreamName = Literal["stdout", "stderr", "pty"]
STREAM_NAMES: frozenset[str] = frozenset(get_args(StreamName))
# The largest pid Linux can hand out (PID_MAX_LIMIT on 64-bit).
MAX_PID = 1 << 22
# Exit codes are 0-255; -1 stands for "ended by a signal". Signals are 1-64 on Linux.
EXIT_CODE_RANGE = range(-1, 256)
SIGNAL_NUMBER_RANGE = range(1, 65)
# The signal's name as strsignal(3) words it, lowercased first: "killed", "real-time signal
# 2", "segmentation fault". 40 characters hold every name glibc has.
_SIGNAL_TEXT = re.compile(r"[a-z][A-Za-z0-9 /()-]{0,39}")


class ProtocolViolation(Exception):
    """The agent's stream broke the protocol; the message says how (bounded text)."""


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
        """The end an `end` event describes, exactly as the agent words it (`end_event` in
        agent.py); ProtocolViolation for any other shape, size or text."""
        exited, code = event.get("exited"), event.get("exit_code")
        if not isinstance(exited, bool) or not _is_int(code) or code not in EXIT_CODE_RANGE:
            raise ProtocolViolation(f"end event with a bad exit: {exited!r:.20}, {code!r:.20}")
        signal, number = event.get("signal"), event.get("signal_number")
        statuses: tuple[str, ...]
        if exited:
            good_signal = signal is None and number is None and code >= 0
            statuses = (f"exit status {code}",)
        else:
            good_signal = (
                isinstance(signal, str)
                and _SIGNAL_TEXT.fullmatch(signal) is not None
                and _is_int(number)
                and number in SIGNAL_NUMBER_RANGE
                and code == -1
            )
            statuses = (f"signal: {signal}", f"signal: {signal} (core dumped)")
        if not good_signal:
            raise ProtocolViolation(f"end event with a bad signal: {signal!r:.50}, {number!r:.20}")
        status = event.get("status")
        if not isinstance(status, str) or status not in statuses:
            raise ProtocolViolation(f"end event with a bad status: {status!r:.80}")
        clean = exited and code == 0
        if event.get("error") != (None if clean else status):
            raise ProtocolViolation(f"end event with a bad error: {event.get('error')!r:.80}")
        return cls(int(code), exited, status, signal, number, None if clean else status)


ProcessEvent = Data | End


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def checked_pid(value: object) -> int:
    """A pid as Linux hands them out; ProtocolViolation otherwise."""
    if not _is_int(value) or not 0 < value < MAX_PID:
        raise ProtocolViolation(f"bad pid {value!r:.30}")
    return value


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
    `mode` holds the permission bits; `mtime_ns` is nanoseconds since the epoch (UTC).
    `metadata` is the file's user metadata (its user.e2b.* attributes), checked."""

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
    metadata: dict[str, str] = field(default_factory=dict)

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
            metadata=checked_metadata(item.get("metadata")),
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
