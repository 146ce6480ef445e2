"""The store's schema as numbered migrations, applied in order when a file is opened.

`schema_version` holds one row per applied migration. A file whose highest version is
newer than `LATEST_VERSION` is refused (`StoreTooNewError`) before anything is written.

Conventions: every time column is `TIMESTAMPTZ` holding UTC (each connection runs with
`TimeZone = 'UTC'`); sizes are bytes unless the name says `_mb`; CPU is percent of the
sandbox's vCPUs (0-100). Only `sandboxes` and `snapshots` have a primary key: on the big
tables a key index made files 3x larger and bulk loads 3x slower, so writes dedup with an
anti-join over the batch's time window instead, and rows are appended in time order so
DuckDB's per-row-group min/max on `ts` prunes reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb

from storage.errors import StoreTooNewError


class Migration(NamedTuple):
    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        (
            """CREATE TABLE sandboxes (
                sandbox_id VARCHAR PRIMARY KEY,
                template_id VARCHAR NOT NULL,
                alias VARCHAR,
                state VARCHAR NOT NULL,            -- running | paused (as last listed)
                cpu_count INTEGER NOT NULL,
                memory_mb INTEGER NOT NULL,
                disk_size_mb INTEGER NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                end_at TIMESTAMPTZ NOT NULL,       -- the API's scheduled end (timeout)
                metadata_json VARCHAR NOT NULL,
                first_seen_at TIMESTAMPTZ NOT NULL,
                last_seen_at TIMESTAMPTZ NOT NULL,
                ended BOOLEAN NOT NULL,            -- left the list (ended_at may be unknown)
                ended_at TIMESTAMPTZ,
                end_reason VARCHAR
            )""",
            """CREATE TABLE samples (
                sandbox_id VARCHAR NOT NULL,
                ts TIMESTAMPTZ NOT NULL,           -- the API's sample time
                cpu_count INTEGER NOT NULL,
                cpu_used_pct DOUBLE NOT NULL,
                mem_used_bytes BIGINT NOT NULL,
                mem_total_bytes BIGINT NOT NULL,
                mem_cache_bytes BIGINT NOT NULL,
                disk_used_bytes BIGINT NOT NULL,
                disk_total_bytes BIGINT NOT NULL
            )""",
            """CREATE TABLE samples_1m (
                sandbox_id VARCHAR NOT NULL,
                minute TIMESTAMPTZ NOT NULL,       -- start of the minute
                samples INTEGER NOT NULL,
                cpu_count INTEGER NOT NULL,        -- max
                cpu_used_pct_max DOUBLE NOT NULL,
                cpu_used_pct_mean DOUBLE NOT NULL,
                mem_used_bytes_max BIGINT NOT NULL,
                mem_used_bytes_mean DOUBLE NOT NULL,
                mem_total_bytes_max BIGINT NOT NULL,
                mem_cache_bytes_max BIGINT NOT NULL,
                mem_cache_bytes_mean DOUBLE NOT NULL,
                disk_used_bytes_max BIGINT NOT NULL,
                disk_used_bytes_mean DOUBLE NOT NULL,
                disk_total_bytes_max BIGINT NOT NULL
            )""",
            # Team totals per minute, built from samples_1m with it: each gauge summed over the
            # sandboxes sampled that minute (of each one's max or mean in the minute).
            """CREATE TABLE team_1m (
                minute TIMESTAMPTZ NOT NULL,
                sandboxes INTEGER NOT NULL,
                cpu_used_vcpus_max DOUBLE NOT NULL,
                cpu_used_vcpus_mean DOUBLE NOT NULL,
                mem_used_bytes_max BIGINT NOT NULL,
                mem_used_bytes_mean DOUBLE NOT NULL,
                mem_total_bytes BIGINT NOT NULL,
                disk_used_bytes_max BIGINT NOT NULL,
                disk_total_bytes BIGINT NOT NULL
            )""",
            """CREATE TABLE team_samples (
                ts TIMESTAMPTZ NOT NULL,
                concurrent_sandboxes INTEGER NOT NULL,
                sandbox_start_rate DOUBLE NOT NULL
            )""",
            """CREATE TABLE team_maxima (
                metric VARCHAR NOT NULL,
                "window" VARCHAR NOT NULL,
                observed_at TIMESTAMPTZ NOT NULL,
                peak_at TIMESTAMPTZ NOT NULL,
                value DOUBLE NOT NULL
            )""",
            """CREATE TABLE events (
                event_id VARCHAR NOT NULL,
                sandbox_id VARCHAR NOT NULL,
                type VARCHAR NOT NULL,
                ts TIMESTAMPTZ NOT NULL,
                team_id VARCHAR NOT NULL,
                kill_reason VARCHAR,
                event_data_json VARCHAR NOT NULL
            )""",
            """CREATE TABLE log_lines (
                sandbox_id VARCHAR NOT NULL,
                ts TIMESTAMPTZ NOT NULL,
                level VARCHAR NOT NULL,
                message VARCHAR NOT NULL,
                fields_json VARCHAR NOT NULL
            )""",
            """CREATE TABLE incidents (
                sandbox_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,             -- oom_confirmed | oom_suspected
                occurred_at TIMESTAMPTZ NOT NULL,  -- when it was killed ("at" is reserved)
                detected_at TIMESTAMPTZ NOT NULL,
                process VARCHAR,
                pid BIGINT,
                mem_used_bytes BIGINT,
                mem_total_bytes BIGINT,
                evidence VARCHAR NOT NULL
            )""",
            """CREATE TABLE collector_runs (
                job VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ NOT NULL,
                rows_written BIGINT NOT NULL,
                error VARCHAR,
                retry_after_s DOUBLE
            )""",
            """CREATE TABLE snapshots (
                kind VARCHAR PRIMARY KEY,          -- templates | webhooks
                saved_at TIMESTAMPTZ NOT NULL,
                json_text VARCHAR NOT NULL
            )""",
            """CREATE TABLE actions (
                acted_at TIMESTAMPTZ NOT NULL,
                actor VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                sandbox_ids VARCHAR[] NOT NULL,
                outcome VARCHAR NOT NULL,
                detail VARCHAR NOT NULL
            )""",
            # Watermarks of the background jobs: 'rollup_done_until' (minutes before it are
            # rolled up), 'raw_kept_from' / 'rollup_kept_from' (retention cut-offs applied).
            """CREATE TABLE maintenance_state (
                name VARCHAR NOT NULL,
                value_at TIMESTAMPTZ NOT NULL
            )""",
            # Minute ranges that got samples after they were rolled up (a backfill); roll_up
            # rebuilds their rollups from the raw rows.
            """CREATE TABLE rollup_dirty (
                from_ts TIMESTAMPTZ NOT NULL,
                until_ts TIMESTAMPTZ NOT NULL
            )""",
        ),
    ),
    # Rebuilt rather than altered: DuckDB cannot add a NOT NULL column to a table with
    # rows, nor set NOT NULL after an UPDATE in the same transaction. Rows keep their
    # minute order (reads prune on it); minutes rolled up before this migration get their
    # total from samples_1m, as the rollup computes it from now on.
    Migration(
        2,
        "team_1m.cpu_total_vcpus: vCPUs of the sandboxes sampled each minute",
        (
            """CREATE TABLE team_1m_v2 (
                minute TIMESTAMPTZ NOT NULL,
                sandboxes INTEGER NOT NULL,
                cpu_used_vcpus_max DOUBLE NOT NULL,
                cpu_used_vcpus_mean DOUBLE NOT NULL,
                mem_used_bytes_max BIGINT NOT NULL,
                mem_used_bytes_mean DOUBLE NOT NULL,
                mem_total_bytes BIGINT NOT NULL,
                disk_used_bytes_max BIGINT NOT NULL,
                disk_total_bytes BIGINT NOT NULL,
                cpu_total_vcpus INTEGER NOT NULL   -- sum of cpu_count (each one's max)
            )""",
            """INSERT INTO team_1m_v2
            SELECT t.*, coalesce(v.cpu_total_vcpus, 0) FROM team_1m t
            LEFT JOIN (
                SELECT minute, sum(cpu_count)::INTEGER AS cpu_total_vcpus
                FROM samples_1m GROUP BY minute
            ) v USING (minute)
            ORDER BY t.minute""",
            "DROP TABLE team_1m",
            "ALTER TABLE team_1m_v2 RENAME TO team_1m",
        ),
    ),
    # The team's templates as the last `GET /v2/templates` listed them: replaced whole on
    # every listing, so a deleted template leaves the catalog.
    Migration(
        3,
        "templates: the team's template catalog as last listed",
        (
            """CREATE TABLE templates (
                template_id VARCHAR PRIMARY KEY,
                build_id VARCHAR NOT NULL,          -- the last successful build
                names VARCHAR[] NOT NULL,
                aliases VARCHAR[] NOT NULL,
                cpu_count INTEGER NOT NULL,
                memory_mb INTEGER NOT NULL,
                disk_size_mb INTEGER NOT NULL,
                public BOOLEAN NOT NULL,
                build_count INTEGER NOT NULL,
                build_status VARCHAR NOT NULL,      -- building | waiting | ready | error
                spawn_count BIGINT NOT NULL,
                last_spawned_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                envd_version VARCHAR NOT NULL,
                listed_at TIMESTAMPTZ NOT NULL
            )""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def file_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to the open file; 0 for a new file."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if exists is None or exists[0] == 0:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Apply every migration newer than the file's version, each in its own transaction.

    Returns the number applied. Raises `StoreTooNewError` (touching nothing) when the file's
    version is newer than `LATEST_VERSION`.
    """
    current = file_version(con)
    if current > LATEST_VERSION:
        raise StoreTooNewError(path, current, LATEST_VERSION)
    applied = 0
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        con.begin()
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER NOT NULL, summary VARCHAR NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL)"
            )
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [migration.version, migration.summary, datetime.now(UTC)],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        applied += 1
    return applied
