"""sandboxd started and stopped by `sandscope run`: free ports, its key, a clean stop, an
already running one used as it is, and clear errors when it cannot start."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandscope.local_sandboxd import (
    LocalSandboxd,
    SandboxdConfigError,
    SandboxdError,
    remove_empty_cgroups,
    sandboxd_environment,
    use_or_start,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def clean_env(cgroup_parent: str, **extra: str) -> dict[str, str]:
    """This process's environment without a developer's own SANDBOXD_* or E2B_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOXD_", "E2B_"))}
    env["SANDBOXD_CGROUP_PARENT"] = cgroup_parent
    env.update(extra)
    return env


def cgroup_dirs(parent: str) -> list[Path]:
    return [path for path in CGROUP_ROOT.glob(f"*/{parent}") if path.exists()]


@pytest.fixture
def cgroup_parent(request: pytest.FixtureRequest) -> Iterator[str]:
    parent = f"sandscope-test-{os.getpid()}-{request.node.name[:20]}"
    yield parent
    remove_empty_cgroups(parent)  # even when the test failed


@pytest.fixture
def started(tmp_path: Path, cgroup_parent: str) -> Iterator[LocalSandboxd]:
    sandboxd = use_or_start(tmp_path / "sandboxd", clean_env(cgroup_parent))
    yield sandboxd
    sandboxd.stop()


def test_environment_picks_free_ports_unless_set(tmp_path: Path) -> None:
    env = sandboxd_environment(tmp_path, {"SANDBOXD_API_PORT": " ", "PATH": "/usr/bin"})
    assert env["SANDBOXD_DATA_DIR"] == str(tmp_path)
    assert env["SANDBOXD_API_PORT"] == "0" and env["SANDBOXD_ENVD_PORT"] == "0"
    assert env["PATH"] == "/usr/bin"
    chosen = sandboxd_environment(tmp_path, {"SANDBOXD_API_PORT": "3999"})
    assert chosen["SANDBOXD_API_PORT"] == "3999" and chosen["SANDBOXD_ENVD_PORT"] == "0"


def test_started_on_free_ports_with_its_key_then_stopped_leaving_nothing(
    started: LocalSandboxd, cgroup_parent: str
) -> None:
    assert started.started_here
    assert started.api_url.startswith("http://127.0.0.1:")
    assert not started.api_url.endswith(":3000")  # port 0, not the default
    assert started.api_key == (started.data_dir / "api_key").read_text().strip()
    assert started.team_id == (started.data_dir / "team_id").read_text().strip()
    assert started.max_sandboxes == 20
    assert started.isolation
    listed = httpx.get(
        f"{started.api_url}/v2/sandboxes", headers={"X-API-Key": started.api_key}, timeout=10
    )
    assert listed.status_code == 200 and listed.json() == []
    process = started.process
    assert process is not None

    assert started.stop() == 0

    assert process.poll() == 0
    assert cgroup_dirs(cgroup_parent) == []
    log = started.log_path.read_text()
    assert "started by sandscope run" in log
    assert "sandboxd: stopping: killing every sandbox" in log  # copied from its stdout
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{started.api_url}/health", timeout=2)


def test_a_sandboxd_already_serving_the_data_dir_is_used_and_left_running(
    started: LocalSandboxd, cgroup_parent: str
) -> None:
    again = use_or_start(started.data_dir, clean_env(cgroup_parent))

    assert not again.started_here
    assert (again.api_url, again.envd_url, again.api_key) == (
        started.api_url,
        started.envd_url,
        started.api_key,
    )
    assert again.stop() is None
    assert httpx.get(f"{started.api_url}/health", timeout=5).status_code == 200
    assert started.log_path.read_text().count("started by sandscope run") == 1


def test_a_bad_setting_is_named_before_anything_starts(tmp_path: Path) -> None:
    env = clean_env("unused", SANDBOXD_MAX_SANDBOXES="many")
    with pytest.raises(SandboxdConfigError, match="SANDBOXD_MAX_SANDBOXES must be"):
        use_or_start(tmp_path / "sandboxd", env)
    assert not (tmp_path / "sandboxd").exists()


def test_a_sandboxd_that_cannot_start_is_reported_with_its_log(
    tmp_path: Path, cgroup_parent: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(cgroup_parent, SANDBOXD_API_PORT=str(port))
        with pytest.raises(SandboxdError) as failed:
            use_or_start(tmp_path / "sandboxd", env)
    message = str(failed.value)
    assert "sandboxd exited with code 1" in message
    assert "cannot start" in message  # the end of its log, quoted
    assert str(tmp_path / "sandboxd" / "sandboxd.log") in message
    assert cgroup_dirs(cgroup_parent) == []
    assert not (Path("/run/sandboxd") / cgroup_parent).exists()  # nor its mounts directory
