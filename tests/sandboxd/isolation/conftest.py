"""Fixtures for the isolation tests: an event loop per test, and isolations that clean up
every process, cgroup and mount they made, even when a test fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxd.isolation.base import BoxSpec
from sandboxd.isolation.bwrap import bwrap_works
from sandboxd.isolation.cgroups import CGROUP_ROOT, UNIFIED, V1_CONTROLLERS
from sandboxd.isolation.full import FullIsolation
from sandboxd.isolation.paths import default_mounts_dir
from sandboxd.isolation.reduced import ReducedIsolation
from tests.sandboxd.isolation.helpers import (
    FULL_PROBE,
    FULL_TEST_ID_BASE,
    FULL_TEST_RANGES,
    PROBE,
    Launch,
    Loop,
    full_skip_reason,
    read_line,
    spec,
)


@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.runner.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A 0700 data dir, as sandboxd makes its own (pytest's tmp_path is gone after)."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def mounts_dir(cgroup_parent: str) -> Iterator[Path]:
    """The run's mount points dir (/run/sandboxd/<parent>); anything still mounted in it
    is unmounted at the end, then it is removed."""
    path = default_mounts_dir(cgroup_parent)
    yield path
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(f"{path}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def agent_file(data_dir: Path) -> Path:
    path = data_dir / "agent.py"
    path.write_text("print('agent')\n")
    return path


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    """A cgroup parent of this test run; removed (with anything left in it) at the end."""
    parent = f"sbx-isolation-test-{os.getpid()}"  # unlike sandboxd-test-<pid> of tests/sandboxd
    yield parent
    for hierarchy in (*V1_CONTROLLERS, UNIFIED):
        base = CGROUP_ROOT / hierarchy / parent
        if base.is_dir():
            for child in base.iterdir():
                if child.is_dir():
                    if hierarchy == UNIFIED:
                        (child / "cgroup.kill").write_text("1")
                    _rmdir_soon(child)
            _rmdir_soon(base)


def _rmdir_soon(path: Path) -> None:
    for _ in range(200):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)  # still busy: tasks of a killed group are exiting


@pytest.fixture
def full_iso(
    loop: Loop, data_dir: Path, cgroup_parent: str, mounts_dir: Path, agent_file: Path
) -> Iterator[FullIsolation]:
    reason = full_skip_reason(cgroup_parent)
    if reason:
        pytest.skip(reason)
    iso = FullIsolation(
        data_dir, cgroup_parent, FULL_TEST_ID_BASE, FULL_TEST_RANGES,
        agent_script=agent_file, mounts_dir=mounts_dir,
    )  # fmt: skip
    yield iso
    for box in iso.live_boxes():
        loop.run(box.destroy())
    loop.run(iso.cleanup_leftovers())
    iso.close()


@pytest.fixture
def reduced_iso(loop: Loop, data_dir: Path, agent_file: Path) -> Iterator[ReducedIsolation]:
    ok, why = bwrap_works()
    if not ok:
        pytest.skip(why)
    iso = ReducedIsolation(data_dir, reasons=["forced by the test"], agent_script=agent_file)
    yield iso
    for box in iso.live_boxes():
        loop.run(box.destroy())
    loop.run(iso.cleanup_leftovers())
    iso.close()


def make_launcher(iso: FullIsolation | ReducedIsolation, loop: Loop) -> Launch:
    probe = FULL_PROBE if isinstance(iso, FullIsolation) else PROBE

    def launch(box_spec: BoxSpec | None = None, command: list[str] | None = None) -> Any:
        """Launch a box (the probe by default, waiting for its "ready")."""
        box: Any = loop.run(iso.launch(box_spec or spec(), command or probe))
        if command is None:
            assert loop.run(read_line(box)) == "ready\n", box.stderr_path.read_text()
        return box

    return launch


@pytest.fixture
def launch_full(full_iso: FullIsolation, loop: Loop) -> Launch:
    """launch(spec=None, command=None) -> FullBox; with the probe it waits for "ready"."""
    return make_launcher(full_iso, loop)


@pytest.fixture
def launch_reduced(reduced_iso: ReducedIsolation, loop: Loop) -> Launch:
    """launch(spec=None, command=None) -> ReducedBox, as `launch_full`."""
    return make_launcher(reduced_iso, loop)
