"""`sudo apt-get install` in a full-isolation box, through the official SDK: the box's /usr,
/etc and /var are overlays whose writes land on the box's own disk (isolation/rootfs.py),
never on the host's."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import Sandbox

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="box root needs full isolation, which needs root"
)

_MIRROR = "deb.debian.org"
_PACKAGE = "hello"  # a tiny package: /usr/bin/hello, which prints a greeting
_APT_TIMEOUT_S = 240


def _mirror_reachable() -> bool:
    try:
        with socket.create_connection((_MIRROR, 80), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture
def box(sdk_env: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=600)  # base: 1 GiB of disk, room for apt's lists
    yield sandbox
    sandbox.kill()


def test_sudo_apt_get_installs_a_package_in_the_box_only(box: Sandbox) -> None:
    if not _mirror_reachable():
        pytest.skip(f"{_MIRROR} is unreachable from this machine: nothing to install from")
    status = Path("/var/lib/dpkg/status")
    status_mtime_ns = status.stat().st_mtime_ns
    assert not Path(f"/usr/bin/{_PACKAGE}").exists(), "the host already has the package"
    apt = "sudo DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=2"
    box.commands.run(f"{apt} update", timeout=_APT_TIMEOUT_S)
    box.commands.run(f"{apt} install -y --no-install-recommends {_PACKAGE}", timeout=_APT_TIMEOUT_S)
    assert box.commands.run(_PACKAGE).stdout == "Hello, world!\n"
    listed = box.commands.run(f"dpkg -s {_PACKAGE}").stdout
    assert "Status: install ok installed" in listed
    assert not Path(f"/usr/bin/{_PACKAGE}").exists()
    assert box.commands.run(f"stat -c %u /usr/bin/{_PACKAGE}").stdout == "0\n"
    assert status.stat().st_mtime_ns == status_mtime_ns


def test_box_roots_files_live_on_its_own_disk_only(sdk_env: None) -> None:
    name = f"sandboxd-test-{uuid.uuid4().hex[:12]}"
    first = Sandbox.create(timeout=120)
    second = Sandbox.create(timeout=120)
    try:
        first.commands.run(f"sudo touch /etc/{name} && sudo mkdir -p /usr/local/{name}")
        first.commands.run(f"sudo sh -c 'echo x > /var/{name}'")
        assert first.commands.run(f"ls /etc/{name} /usr/local/{name} /var/{name}").exit_code == 0
        owner = first.commands.run(f"stat -c %u /etc/{name}").stdout.strip()
        assert owner == "0"
        for path in (f"/etc/{name}", f"/usr/local/{name}", f"/var/{name}"):
            assert not os.path.lexists(path), f"{path} reached the host"
            assert second.commands.run(f"test -e {path} || echo absent").stdout == "absent\n"
    finally:
        first.kill()
        second.kill()
