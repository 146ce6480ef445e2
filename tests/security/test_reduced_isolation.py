"""Finding 1: reduced isolation ran box code as host root.

Against a real sandboxd forced to `SANDBOXD_ISOLATION=reduced`, code in a box (through the
official SDK) must not be host root: its uid maps to an unprivileged host uid, /etc/shadow
stays closed, it holds no capability, and a bounded process bomb stops at the box's
process limit (RLIMIT_NPROC does not apply to root). When sandboxd cannot give boxes an
unprivileged uid, it refuses to start and says why.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from e2b import Sandbox

from sandboxd.testing import (
    READY_LINE,
    SOURCE_ROOT,
    RunningSandboxd,
    running_sandboxd,
    stop,
)

MAX_PROCESSES = 64
BOMB_SIZE = 300  # what got through in the finding; a sleep each, killed after
BOMB_TIMEOUT_S = 60
REFUSAL_TIMEOUT_S = 30.0
# A uid range of this test run's own: a sandboxd of another test keeps its uids.
UID_BASE = 400_000 + (os.getpid() % 500) * 100


@pytest.fixture(scope="module")
def reduced_sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    with running_sandboxd(
        tmp_path_factory.mktemp("reduced-attack"),
        SANDBOXD_ISOLATION="reduced",
        SANDBOXD_MAX_PROCESSES=str(MAX_PROCESSES),
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
    ) as server:
        yield server


@pytest.fixture
def box(reduced_sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    for name, value in reduced_sandboxd.sdk_env().items():
        monkeypatch.setenv(name, value)
    sandbox = Sandbox.create(timeout=120)
    yield sandbox
    with contextlib.suppress(Exception):  # already gone
        sandbox.kill()


def test_box_code_is_not_host_root_and_holds_no_capability(box: Sandbox) -> None:
    marker = f"uid-probe-{uuid.uuid4().hex}"
    # A process named after the marker, so the host can find it and read its host uid
    # (inside, bwrap's uid maps hide it: the box says 1000 whoever it is on the host).
    box.commands.run(f"exec -a {marker} sleep 60", background=True)
    host_uids = _host_uids_of(marker)
    shadow = box.commands.run("cat /etc/shadow 2>&1; echo exit=$?", timeout=10)
    status = box.commands.run("grep ^Cap /proc/self/status").stdout
    caps = dict(line.split(":\t") for line in status.splitlines())

    assert host_uids and 0 not in host_uids
    assert "exit=0" not in shadow.stdout
    assert set(caps) == {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}
    assert set(caps.values()) == {"0000000000000000"}


BOMB = f"""
import os, signal
pids, refused = [], None
for _ in range({BOMB_SIZE}):
    try:
        pids.append(os.posix_spawn('/bin/sleep', ['sleep', '{BOMB_TIMEOUT_S}'], {{}}))
    except OSError as exc:
        refused = exc.errno
        break
print(len(pids), refused)
for pid in pids:
    os.kill(pid, signal.SIGKILL)
for pid in pids:
    os.waitpid(pid, 0)
"""


def test_a_process_bomb_stops_at_the_box_limit(box: Sandbox) -> None:
    box.files.write("/home/user/bomb.py", BOMB)
    held, refused = box.commands.run(
        "python3 bomb.py", timeout=BOMB_TIMEOUT_S, cwd="/home/user"
    ).stdout.split()

    assert int(held) < MAX_PROCESSES
    assert refused == "11"  # EAGAIN: RLIMIT_NPROC


def _host_uids_of(marker: str) -> set[int]:
    """Real uids, as the host sees them, of the processes whose argv[0] is `marker`
    (polled: the process is being started)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = set()
        for proc in psutil.process_iter(["cmdline", "uids"]):
            cmdline, uids = proc.info["cmdline"], proc.info["uids"]
            if cmdline and cmdline[0] == marker and uids is not None:
                found.add(uids.real)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no process named {marker} appeared on the host")


def _refusal(data_dir: Path, prefix: list[str], **settings: str) -> tuple[int | None, str]:
    """Start sandboxd (after `prefix`) and return (exit code, stderr) if it refuses to
    start; (None, stderr) when it started (and is stopped again)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOXD_", "E2B_"))},
        "SANDBOXD_DATA_DIR": str(data_dir),
        "SANDBOXD_API_PORT": "0",
        "SANDBOXD_ENVD_PORT": "0",
        "SANDBOXD_CGROUP_PARENT": f"sandboxd-refusal-{os.getpid()}",
        "SANDBOXD_ISOLATION": "reduced",
        **settings,
    }
    log_path = data_dir.parent / f"{data_dir.name}.stderr"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "sandboxd"],
            cwd=SOURCE_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + REFUSAL_TIMEOUT_S
    started = False
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready and READY_LINE.search(process.stdout.readline()):
            started = True
            break
    if started or process.poll() is None:
        stop(process)
        return None, log_path.read_text()
    process.stdout.close()
    return process.returncode, log_path.read_text()


def test_sandboxd_refuses_a_uid_base_that_is_not_unprivileged(tmp_path: Path) -> None:
    code, stderr = _refusal(tmp_path / "data", [], SANDBOXD_HOST_UID_BASE="500")

    assert code is not None and code != 0, "sandboxd started with a privileged uid base"
    assert "SANDBOXD_HOST_UID_BASE" in stderr and "1000" in stderr


def test_sandboxd_refuses_when_root_cannot_switch_to_the_box_uid(tmp_path: Path) -> None:
    # Root in a user namespace that maps only uid 0 (as in a rootless container): euid 0,
    # but no unprivileged uid to become.
    if os.geteuid() != 0:
        pytest.skip("sandboxd runs boxes as its own uid when not root: nothing to switch")
    unshare = "/usr/bin/unshare"
    if subprocess.run([unshare, "--user", "--map-root-user", "true"], check=False).returncode:
        pytest.skip("cannot make a user namespace here")
    code, stderr = _refusal(
        tmp_path / "data", [unshare, "--user", "--map-root-user"],
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
    )  # fmt: skip

    assert code is not None and code != 0, "sandboxd started without an unprivileged uid"
    assert f"cannot switch to host uid {UID_BASE}" in stderr
