"""Agent results in the protobuf-JSON shapes the SDK's generated classes parse.

protobuf JSON: lowerCamelCase names, bytes in base64, 64-bit integers as strings,
enums by name, Timestamps as RFC 3339 in UTC. Shapes follow envd's process.proto and
filesystem.proto (e2b/envd/process/process_pb.py, e2b/envd/filesystem/filesystem_pb.py).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sandboxd.agent import Data, End, EntryInfo, ProcessEvent, ProcessInfo

Message = dict[str, Any]

_FILE_TYPES = {
    "file": "FILE_TYPE_FILE",
    "dir": "FILE_TYPE_DIRECTORY",
    "symlink": "FILE_TYPE_SYMLINK",
}


def rfc3339(ns: int) -> str:
    """A google.protobuf.Timestamp in JSON: UTC, nanoseconds when there are any."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"


def entry_json(entry: EntryInfo) -> Message:
    """filesystem.EntryInfo. `size` is int64 (a string); a symlink keeps its target's
    type and sets isSymlink, as newer envd does (e2b map_entry_info reads both)."""
    message: Message = {
        "name": entry.name,
        "type": _FILE_TYPES.get(entry.type, "FILE_TYPE_UNSPECIFIED"),
        "path": entry.path,
        "size": str(entry.size),
        "mode": entry.mode,
        "permissions": entry.permissions,
        "owner": entry.owner,
        "group": entry.group,
        "modifiedTime": rfc3339(entry.mtime_ns),
    }
    if entry.is_symlink:
        message["isSymlink"] = True
    if entry.symlink_target is not None:
        message["symlinkTarget"] = entry.symlink_target
    if entry.metadata:  # map<string, string> metadata: user.e2b.* attributes
        message["metadata"] = dict(entry.metadata)
    return message


def process_info_json(info: ProcessInfo) -> Message:
    """process.ProcessInfo: the start request's config, the pid, the optional tag."""
    config: Message = {"cmd": info.cmd, "args": info.args, "envs": info.envs}
    if info.cwd is not None:
        config["cwd"] = info.cwd
    message: Message = {"config": config, "pid": info.pid}
    if info.tag is not None:
        message["tag"] = info.tag
    return message


def start_event(pid: int) -> Message:
    """The first message of a Start or Connect stream (e2b extract_start_pid needs it)."""
    return {"event": {"start": {"pid": pid}}}


KEEPALIVE_EVENT: Message = {"event": {"keepalive": {}}}


def process_event(event: ProcessEvent) -> Message:
    """A StartResponse / ConnectResponse: {"event": {"data" | "end": ...}}."""
    if isinstance(event, Data):
        chunk = base64.b64encode(event.data).decode()
        return {"event": {"data": {event.stream: chunk}}}
    return {"event": {"end": end_json(event)}}


def end_json(end: End) -> Message:
    """ProcessEvent.EndEvent: exitCode (-1 after a signal), exited, status, error."""
    message: Message = {"exitCode": end.exit_code, "exited": end.exited, "status": end.status}
    if end.error is not None:
        message["error"] = end.error
    return message
