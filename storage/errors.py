"""The store's errors. Every failure to open or migrate a file surfaces as one of these,
never as a raw DuckDB error:

- `StoreError`: the base class; also raised directly when DuckDB cannot open or read the file
  for another reason (permissions, a corrupt file), with DuckDB's message attached.
- `StoreInUseError`: another process holds the file (DuckDB allows one process per file,
  even for reads); `.path` and `.pid` say which file and which process.
- `StoreTooNewError`: the file was written by a newer sandscope whose schema this code does
  not know; `.file_version` and `.known_version` say how far apart they are.
"""

from __future__ import annotations

import re
from pathlib import Path

# DuckDB 2.x: 'Could not set lock on file "<path>": Conflicting lock is held in <exe> (PID n)'
_LOCK_PID = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


class StoreError(Exception):
    """The monitor's DuckDB file could not be opened, migrated or used."""


class StoreInUseError(StoreError):
    """Another process has the file open; DuckDB lets only one process open it at all."""

    def __init__(self, path: Path, pid: int | None, holder: str | None) -> None:
        self.path = path
        self.pid = pid
        self.holder = holder
        who = f"process {pid}" if pid is not None else "another process"
        if holder:
            who += f" ({holder})"
        super().__init__(
            f"{path} is in use by {who}: only one sandscope process can open a DuckDB file. "
            "Stop that process, or point this one at another file."
        )

    @classmethod
    def from_lock_message(cls, path: Path, message: str) -> StoreInUseError:
        """Build the error from DuckDB's lock message, taking the PID and program from it."""
        match = _LOCK_PID.search(message)
        if match is None:
            return cls(path, None, None)
        return cls(path, int(match["pid"]), match["exe"])


class StoreTooNewError(StoreError):
    """The file's schema version is newer than any migration this code knows."""

    def __init__(self, path: Path, file_version: int, known_version: int) -> None:
        self.path = path
        self.file_version = file_version
        self.known_version = known_version
        super().__init__(
            f"{path} has schema version {file_version}, but this sandscope knows only up to "
            f"version {known_version}: it was written by a newer sandscope. Upgrade sandscope "
            "(or use another file); the file was left untouched."
        )


def is_lock_error(message: str) -> bool:
    """True when a DuckDB error message says another process holds the file's lock."""
    return "Could not set lock on file" in message
