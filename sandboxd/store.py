"""sandboxd's own SQLite store: sandboxes, usage samples, logs, lifecycle events, team samples.

Used from the event loop's thread only; each write is one short transaction. Times are UTC:
samples and team samples in Unix seconds, logs in Unix milliseconds, events as ISO text.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandboxd.records import token_sha256

SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    sandbox_id TEXT PRIMARY KEY,
    record TEXT NOT NULL,             -- the sandbox's details as JSON
    state TEXT NOT NULL               -- running, paused or killed
);
CREATE TABLE IF NOT EXISTS samples (
    sandbox_id TEXT NOT NULL,
    ts_unix_s INTEGER NOT NULL,
    cpu_count INTEGER NOT NULL,
    cpu_used_pct REAL NOT NULL,
    mem_used_bytes INTEGER NOT NULL,
    mem_total_bytes INTEGER NOT NULL,
    mem_cache_bytes INTEGER NOT NULL,
    disk_used_bytes INTEGER NOT NULL,
    disk_total_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_sandbox ON samples (sandbox_id, ts_unix_s);
CREATE TABLE IF NOT EXISTS logs (
    sandbox_id TEXT NOT NULL,
    ts_unix_ms INTEGER NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_sandbox ON logs (sandbox_id, ts_unix_ms);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    sandbox_id TEXT NOT NULL,
    body TEXT NOT NULL                -- the event as the API answers it
);
CREATE INDEX IF NOT EXISTS events_by_sandbox ON events (sandbox_id, seq);
CREATE TABLE IF NOT EXISTS team_samples (
    ts_unix_s INTEGER NOT NULL,
    concurrent_sandboxes INTEGER NOT NULL,
    sandbox_start_rate REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS team_samples_by_time ON team_samples (ts_unix_s);
-- Templates (sandboxd/templates/): made by CREATE IF NOT EXISTS, so an older store gains
-- them at its next start. Records are JSON (sandboxd/templates/records.py).
CREATE TABLE IF NOT EXISTS templates (
    template_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS template_builds (
    build_id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS template_builds_by_template ON template_builds (template_id);
CREATE TABLE IF NOT EXISTS template_build_logs (
    build_id TEXT NOT NULL,
    seq INTEGER NOT NULL,             -- 0, 1, 2...: the offset the SDK's polling counts
    entry TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
);
CREATE TABLE IF NOT EXISTS template_layers (
    layer_key TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    record TEXT NOT NULL
);
"""

LOG_LEVELS = ("debug", "info", "warn", "error")
# SQLite makes its -wal and -shm files with the database file's mode; both are made
# private too in case an older run left them readable.
_SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class Sample:
    """One usage sample of a sandbox (bytes, percent of its vCPUs)."""

    sandbox_id: str
    ts_unix_s: int
    cpu_count: int
    cpu_used_pct: float
    mem_used_bytes: int
    mem_total_bytes: int
    mem_cache_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class LogLine:
    """One log line of a sandbox."""

    sandbox_id: str
    ts_unix_ms: int
    level: str
    message: str
    fields: dict[str, str]


@dataclass(frozen=True)
class TeamSample:
    """Running sandboxes and starts per second at one moment."""

    ts_unix_s: int
    concurrent_sandboxes: int
    sandbox_start_rate: float


class Store:
    """The questions sandboxd asks of its SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _make_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows (old logs, a scrubbed token) are zeroed in their pages, not left
        # in free space; FAST does it without extra writes.
        self._db.execute("PRAGMA secure_delete=FAST")
        self._db.executescript(SCHEMA)
        self._forget_clear_tokens()
        for suffix in _SIDE_FILES:
            _make_private(path.with_name(path.name + suffix), create=False)

    def _forget_clear_tokens(self) -> None:
        """Records written before tokens were hashed held them in clear: keep the hash."""
        rows = self._db.execute(
            "SELECT sandbox_id, record FROM sandboxes "
            "WHERE json_extract(record, '$.access_token') IS NOT NULL"
        ).fetchall()
        if not rows:
            return
        with self._db:
            for sandbox_id, record_text in rows:
                record = json.loads(record_text)
                token = record.pop("access_token")
                record["access_token_sha256"] = token_sha256(str(token))
                self._db.execute(
                    "UPDATE sandboxes SET record = ? WHERE sandbox_id = ?",
                    (json.dumps(record), sandbox_id),
                )
        # Move the scrubbed pages into the main file and empty the WAL that held them.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()

    # --- sandboxes ---------------------------------------------------------------------

    def save_sandbox(self, sandbox_id: str, record: dict[str, Any], state: str) -> None:
        """Insert or replace a sandbox's details."""
        self._db.execute(
            "INSERT OR REPLACE INTO sandboxes VALUES (?, ?, ?)",
            (sandbox_id, json.dumps(record), state),
        )

    def sandbox(self, sandbox_id: str) -> tuple[dict[str, Any], str] | None:
        """(details, state) of a sandbox ever seen, or None."""
        row = self._db.execute(
            "SELECT record, state FROM sandboxes WHERE sandbox_id = ?", (sandbox_id,)
        ).fetchone()
        return None if row is None else (json.loads(row[0]), row[1])

    def sandboxes_in_states(self, states: Iterable[str]) -> list[tuple[dict[str, Any], str]]:
        """Every sandbox in one of `states`."""
        wanted = list(states)
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(
            f"SELECT record, state FROM sandboxes WHERE state IN ({marks})", wanted
        ).fetchall()
        return [(json.loads(record), state) for record, state in rows]

    # --- samples -----------------------------------------------------------------------

    def add_samples(self, samples: Sequence[Sample]) -> None:
        """Keep a tick's samples, in one transaction."""
        self._db.executemany(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.sandbox_id,
                    s.ts_unix_s,
                    s.cpu_count,
                    s.cpu_used_pct,
                    s.mem_used_bytes,
                    s.mem_total_bytes,
                    s.mem_cache_bytes,
                    s.disk_used_bytes,
                    s.disk_total_bytes,
                )
                for s in samples
            ],
        )

    def samples(self, sandbox_id: str, start_s: int | None, end_s: int | None) -> list[Sample]:
        """A sandbox's samples from `start_s` to `end_s` inclusive, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM samples WHERE sandbox_id = ? AND ts_unix_s >= ? AND ts_unix_s <= ? "
            "ORDER BY ts_unix_s",
            (sandbox_id, start_s if start_s is not None else 0, end_s or 2**62),
        ).fetchall()
        return [Sample(*row) for row in rows]

    def latest_samples(self, sandbox_ids: Sequence[str]) -> dict[str, Sample]:
        """The newest sample of each sandbox that has one."""
        marks = ",".join("?" * len(sandbox_ids))
        rows = self._db.execute(
            f"SELECT * FROM samples WHERE sandbox_id IN ({marks}) AND ts_unix_s = "
            "(SELECT MAX(ts_unix_s) FROM samples AS newer "
            "WHERE newer.sandbox_id = samples.sandbox_id)",
            list(sandbox_ids),
        ).fetchall()
        return {row[0]: Sample(*row) for row in rows}

    # --- logs --------------------------------------------------------------------------

    def add_log(self, line: LogLine) -> None:
        self._db.execute(
            "INSERT INTO logs VALUES (?, ?, ?, ?, ?)",
            (line.sandbox_id, line.ts_unix_ms, line.level, line.message, json.dumps(line.fields)),
        )

    def logs(
        self,
        sandbox_id: str,
        cursor_ms: int | None,
        limit: int,
        forward: bool,
        min_level: str | None,
        search: str | None,
    ) -> list[LogLine]:
        """Up to `limit` lines from `cursor_ms` on (forward) or back (backward), time order
        of the direction; lines below `min_level` and without `search` left out."""
        clauses = ["sandbox_id = ?"]
        params: list[object] = [sandbox_id]
        if cursor_ms is not None:
            clauses.append("ts_unix_ms >= ?" if forward else "ts_unix_ms <= ?")
            params.append(cursor_ms)
        if min_level is not None:
            allowed = LOG_LEVELS[LOG_LEVELS.index(min_level) :]
            clauses.append(f"level IN ({','.join('?' * len(allowed))})")
            params.extend(allowed)
        if search:
            # instr is case-sensitive, as E2B's search is.
            clauses.append("instr(message, ?) > 0")
            params.append(search)
        order = "ASC" if forward else "DESC"
        rows = self._db.execute(
            f"SELECT * FROM logs WHERE {' AND '.join(clauses)} "
            f"ORDER BY ts_unix_ms {order}, rowid {order} LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [LogLine(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    # --- events ------------------------------------------------------------------------

    def add_event(self, event: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO events (id, sandbox_id, body) VALUES (?, ?, ?)",
            (event["id"], event["sandboxId"], json.dumps(event)),
        )

    def events(
        self,
        sandbox_id: str | None,
        types: Sequence[str],
        offset: int,
        limit: int,
        oldest_first: bool,
    ) -> list[dict[str, Any]]:
        """Events of one sandbox (or all), of `types` (or any), a page at `offset`."""
        clauses, params = ["1 = 1"], []
        if sandbox_id is not None:
            clauses.append("sandbox_id = ?")
            params.append(sandbox_id)
        if types:
            clauses.append(f"json_extract(body, '$.type') IN ({','.join('?' * len(types))})")
            params.extend(types)
        order = "ASC" if oldest_first else "DESC"
        rows = self._db.execute(
            f"SELECT body FROM events WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    # --- team --------------------------------------------------------------------------

    def add_team_sample(self, sample: TeamSample) -> None:
        self._db.execute(
            "INSERT INTO team_samples VALUES (?, ?, ?)",
            (sample.ts_unix_s, sample.concurrent_sandboxes, sample.sandbox_start_rate),
        )

    def team_samples(self, start_s: int, end_s: int) -> list[TeamSample]:
        rows = self._db.execute(
            "SELECT * FROM team_samples WHERE ts_unix_s >= ? AND ts_unix_s <= ? ORDER BY ts_unix_s",
            (start_s, end_s),
        ).fetchall()
        return [TeamSample(*row) for row in rows]

    # --- templates ---------------------------------------------------------------------

    def save_template(self, template_id: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO templates VALUES (?, ?)", (template_id, json.dumps(record))
        )

    def templates(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM templates").fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_template(self, template_id: str) -> None:
        """The template, its builds and their logs (its layers: `delete_layer`)."""
        with self._db:
            self._db.execute(
                "DELETE FROM template_build_logs WHERE build_id IN "
                "(SELECT build_id FROM template_builds WHERE template_id = ?)",
                (template_id,),
            )
            self._db.execute("DELETE FROM template_builds WHERE template_id = ?", (template_id,))
            self._db.execute("DELETE FROM templates WHERE template_id = ?", (template_id,))

    def save_build(self, build_id: str, template_id: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO template_builds VALUES (?, ?, ?)",
            (build_id, template_id, json.dumps(record)),
        )

    def builds(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM template_builds ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_build(self, build_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM template_build_logs WHERE build_id = ?", (build_id,))
            self._db.execute("DELETE FROM template_builds WHERE build_id = ?", (build_id,))

    def add_build_log(self, build_id: str, seq: int, entry: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO template_build_logs VALUES (?, ?, ?)",
            (build_id, seq, json.dumps(entry)),
        )

    def build_logs(self, build_id: str, from_seq: int, limit: int) -> list[tuple[int, Any]]:
        """(seq, entry) of a build's log lines from `from_seq` on, oldest first."""
        rows = self._db.execute(
            "SELECT seq, entry FROM template_build_logs WHERE build_id = ? AND seq >= ? "
            "ORDER BY seq LIMIT ?",
            (build_id, from_seq, limit),
        ).fetchall()
        return [(seq, json.loads(entry)) for seq, entry in rows]

    def forget_build_logs_before(self, build_id: str, seq: int) -> None:
        self._db.execute(
            "DELETE FROM template_build_logs WHERE build_id = ? AND seq < ?", (build_id, seq)
        )

    def last_build_log_seq(self, build_id: str) -> int | None:
        row = self._db.execute(
            "SELECT MAX(seq) FROM template_build_logs WHERE build_id = ?", (build_id,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def save_layer(self, layer_key: str, template_id: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO template_layers VALUES (?, ?, ?)",
            (layer_key, template_id, json.dumps(record)),
        )

    def layers(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT record FROM template_layers").fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_layer(self, layer_key: str) -> None:
        self._db.execute("DELETE FROM template_layers WHERE layer_key = ?", (layer_key,))

    # --- retention ---------------------------------------------------------------------

    def forget_before(self, cutoff_unix_s: int) -> None:
        """Drop samples, logs and team samples older than the cutoff, and ended sandboxes'
        events and details older than it."""
        with self._db:
            self._db.execute("DELETE FROM samples WHERE ts_unix_s < ?", (cutoff_unix_s,))
            self._db.execute("DELETE FROM logs WHERE ts_unix_ms < ?", (cutoff_unix_s * 1000,))
            self._db.execute("DELETE FROM team_samples WHERE ts_unix_s < ?", (cutoff_unix_s,))
            self._db.execute(
                "DELETE FROM events WHERE julianday(json_extract(body, '$.timestamp')) "
                "< julianday(?, 'unixepoch')",
                (cutoff_unix_s,),
            )


def _make_private(path: Path, create: bool = True) -> None:
    """Make `path` mode 0600 whatever the umask (created empty when `create`)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
