"""`sandscope collect`: which API it targets, one process per file, a clean stop on a signal.

The processes here collect from a scripted API on 127.0.0.1 (an empty team) into a DuckDB
file under tmp_path; `tests/collectors/test_crash.py` runs it against a real sandboxd.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.config import CollectorConfig
from collectors.scheduler import JOBS
from sandscope.cli import main
from sandscope.collect_command import collector_config
from sandscope.settings import load_settings
from storage import MonitorStore
from tests.e2bapi import payloads
from tests.sandscope.local_api import ScriptedAPI, scripted_api
from tests.sandscope.sandscope_process import SandscopeProcess, run_to_end

REPOSITORY = Path(__file__).resolve().parents[2]
API_KEY = "e2b_00112233445566778899aabbccddeeff00112233"
SANDBOXD_KEY = "e2b_99887766554433221100ffeeddccbbaa99887766"
JOBS_IN_ORDER = tuple(job.name for job in JOBS)


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    """An E2B API with an empty team."""
    with scripted_api() as server:
        server.on("GET", "/v2/sandboxes", 200, [])
        server.on("GET", "/events/sandboxes", 200, [])
        server.on("GET", f"/teams/{payloads.TEAM_ID}/metrics", 200, [])
        server.on("GET", f"/teams/{payloads.TEAM_ID}/metrics/max", 200, payloads.max_team_metric())
        yield server


def collect_env(tmp_path: Path, api: ScriptedAPI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDSCOPE_"))}
    env.update(
        E2B_API_URL=api.url,
        E2B_TEAM_ID=payloads.TEAM_ID,
        SANDSCOPE_DB=str(tmp_path / "monitor.duckdb"),
        SANDSCOPE_SANDBOXD_DATA_DIR=str(tmp_path / "no-sandboxd"),
        SANDSCOPE_POLL_INTERVAL_S="0.5",
        SANDSCOPE_MAX_ATTEMPTS="1",
    )
    env.update(extra)
    return env


def collect_process(env: dict[str, str]) -> SandscopeProcess:
    return SandscopeProcess(env, REPOSITORY, "collect")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_it_cleanly_with_the_runs_recorded(
    api: ScriptedAPI, tmp_path: Path, signum: int
) -> None:
    collect = collect_process(collect_env(tmp_path, api, E2B_API_KEY=API_KEY))
    collect.wait_for(re.compile(r"^\S+ poll +ok"))

    code, _ = collect.stop(signum)
    err = "\n".join(collect.err)

    assert code == 0, err
    assert "Traceback" not in err
    assert collect.out[0] == f"collecting from the E2B API at {api.url}"
    assert "stopping: finishing the runs in progress, then closing the store" in collect.out
    assert collect.out[-1] == "stopped"
    with MonitorStore.open(tmp_path / "monitor.duckdb") as store:
        fresh = store.data_freshness(datetime.now(UTC)).set_index("job")
    assert "poll" in fresh.index and fresh.loc["poll", "last_error"] is None
    assert all(r.headers.get("X-API-Key") == API_KEY for r in api.requests)


def test_a_second_collect_on_the_same_file_is_refused_naming_the_first(
    api: ScriptedAPI, tmp_path: Path
) -> None:
    env = collect_env(tmp_path, api, E2B_API_KEY=API_KEY)
    first = collect_process(env)
    try:
        first.wait_for(re.compile("Ctrl-C stops"))
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "sandscope", "collect"],
            cwd=REPOSITORY,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        took_s = time.monotonic() - started
    finally:
        code, _ = first.stop(signal.SIGTERM)

    assert second.returncode == 1
    assert f"is in use by process {first.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert second.stdout == ""  # nothing collected, nothing printed
    assert took_s < 10
    assert code == 0


def test_without_a_key_it_collects_from_sandboxd_with_sandboxd_s_key(
    api: ScriptedAPI, tmp_path: Path
) -> None:
    sandboxd_dir = tmp_path / "sandboxd"
    sandboxd_dir.mkdir()
    (sandboxd_dir / "api_key").write_text(SANDBOXD_KEY + "\n")
    (sandboxd_dir / "team_id").write_text(payloads.TEAM_ID + "\n")
    env = collect_env(tmp_path, api, SANDSCOPE_SANDBOXD_DATA_DIR=str(sandboxd_dir))
    del env["E2B_TEAM_ID"]
    collect = collect_process(env)
    collect.wait_for(re.compile(r"^\S+ team +ok"))
    code, _ = collect.stop(signal.SIGTERM)
    err = "\n".join(collect.err)

    assert code == 0, err
    assert collect.out[0] == (
        f"collecting from the sandboxd at {api.url} (E2B_API_URL) "
        f"with the key in {sandboxd_dir / 'api_key'}"
    )
    assert {r.headers.get("X-API-Key") for r in api.requests} == {SANDBOXD_KEY}
    assert any(r.path.startswith(f"/teams/{payloads.TEAM_ID}/") for r in api.requests)


def test_without_a_key_or_sandboxd_it_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    monkeypatch.setenv("SANDSCOPE_SANDBOXD_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("SANDSCOPE_DB", str(tmp_path / "monitor.duckdb"))

    assert main(["collect"]) == 2
    err = capsys.readouterr().err
    assert "E2B_API_KEY is not set" in err and "sandscope sandboxd" in err
    assert not (tmp_path / "monitor.duckdb").exists()


def test_the_jobs_intervals_come_from_the_settings() -> None:
    settings = load_settings(
        {
            "SANDSCOPE_POLL_INTERVAL_S": "2",
            "SANDSCOPE_EVENTS_INTERVAL_S": "7",
            "SANDSCOPE_SLOW_INTERVAL_S": "30",
            "SANDSCOPE_MAINTENANCE_INTERVAL_S": "90",
            "SANDSCOPE_RAW_RETENTION_DAYS": "3",
            "SANDSCOPE_ROLLUP_RETENTION_DAYS": "30",
        },
        secrets_file=None,
    )

    config = collector_config(settings)

    assert [config.interval_s(job) for job in ("poll", "team", "trouble", "backfill")] == [2] * 4
    assert (config.events_interval_s, config.slow_interval_s) == (7, 30)
    assert config.maintenance_interval_s == 90
    assert (config.raw_retention_days, config.rollup_retention_days) == (3, 30)
    assert config.backfill_gap_s == CollectorConfig().backfill_gap_s


def test_once_runs_every_job_once_then_exits_0(api: ScriptedAPI, tmp_path: Path) -> None:
    done = run_to_end(
        collect_env(tmp_path, api, E2B_API_KEY=API_KEY), REPOSITORY, "collect", "--once"
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"collecting from the E2B API at {api.url}"
    ran = [line.split()[1] for line in lines if re.match(r"^\d\d:\d\d:\d\d ", line)]
    assert ran == list(JOBS_IN_ORDER)
    assert all(re.search(r" ok +\d+ rows", line) for line in lines[2:-1])
    assert lines[-1] == "done"
    assert [r.path.split("?")[0] for r in api.requests].count("/v2/sandboxes") == 1


def test_once_exits_1_naming_the_jobs_that_failed(api: ScriptedAPI, tmp_path: Path) -> None:
    del api.answers[("GET", "/v2/sandboxes")]  # the poll's list now answers 404

    done = run_to_end(
        collect_env(tmp_path, api, E2B_API_KEY=API_KEY), REPOSITORY, "collect", "--once"
    )

    assert done.returncode == 1
    assert re.search(r"^\S+ poll +FAILED", done.stdout, re.MULTILINE), done.stdout
    assert done.stdout.splitlines()[-1] == "done; failed: poll"
    assert "Traceback" not in done.stderr
