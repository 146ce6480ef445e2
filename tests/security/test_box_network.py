"""A box's network (issue 11): out to the internet through slirp4netns, never to a host
service. Traffic goes only to 127.0.0.1 and PyPI; every other denial is proved by reading the
rules of the box's namespace from the host, never by sending packets to private ranges."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import AsyncSandbox, Sandbox

from sandboxd.isolation.netns import owner_userns_inode
from sandboxd.isolation.network import ALWAYS_DENIED, NSENTER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="full isolation needs root")
# pip from PyPI through the box's user-mode stack; a slow registry gets this long.
PIP_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 10
# `pip download` of a small pure-Python wheel, no dependencies, into the box's /tmp.
PIP_DOWNLOAD = "python3 -m pip download six --no-deps --no-cache-dir -q -d /tmp/dl && ls /tmp/dl"


def _connect_from_box(box: Sandbox, host: str, port: int) -> str:
    """What a TCP connect from inside the box to host:port gave: "connected" or the error."""
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), {PROBE_TIMEOUT_S}); print('connected')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__, e.errno)\n"
    )
    box.files.write("/tmp/probe.py", code)
    return box.commands.run("python3 /tmp/probe.py", timeout=PROBE_TIMEOUT_S * 3).stdout.strip()


@contextlib.contextmanager
def _box_netns(box: Sandbox) -> Iterator[int]:
    """An fd of the box's network namespace, found from the host through a process the box
    starts with a marker of its own in its command line."""
    marker = f"netprobe{secrets.token_hex(6)}"
    box.commands.run(f"bash -c 'exec -a {marker} sleep 300' >/dev/null 2>&1 &", timeout=10)
    pid = _wait_for_process(marker)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _wait_for_process(marker: str) -> int:
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "cmdline").read_bytes().split(b"\0")[0] == marker.encode():
                        return int(entry.name)
    raise AssertionError(f"no process {marker} appeared")


def _rules(netns_fd: int) -> list[dict[str, object]]:
    done = subprocess.run(
        [NSENTER, f"--net=/proc/self/fd/{netns_fd}", "ip", "-j", "rule", "show"],
        pass_fds=[netns_fd], capture_output=True, check=True, timeout=10,
    )  # fmt: skip
    rules: list[dict[str, object]] = json.loads(done.stdout)
    return rules


def test_a_box_downloads_from_pypi(sdk_env: None) -> None:
    box = Sandbox.create(template="base", timeout=180)
    try:
        result = box.commands.run(PIP_DOWNLOAD, timeout=PIP_TIMEOUT_S)
        assert result.exit_code == 0
        assert "six-" in result.stdout
    finally:
        box.kill()


def test_a_box_downloads_from_pypi_async(sdk_env: None) -> None:
    async def scenario() -> tuple[int, str]:
        box = await AsyncSandbox.create(template="base", timeout=180)
        try:
            result = await box.commands.run(PIP_DOWNLOAD, timeout=PIP_TIMEOUT_S)
            return result.exit_code, result.stdout
        finally:
            await box.kill()

    exit_code, listing = asyncio.run(scenario())
    assert exit_code == 0
    assert "six-" in listing


def test_without_internet_access_a_box_has_no_route(sdk_env: None) -> None:
    box = Sandbox.create(template="base", timeout=120, allow_internet_access=False)
    try:
        routes = box.commands.run("cat /proc/net/route", timeout=10).stdout.splitlines()
        assert routes[1:] == []  # the header only: not even a default route
        resolv = box.commands.run("getent hosts pypi.org || echo unresolved", timeout=30)
        assert resolv.stdout.strip() == "unresolved"
    finally:
        box.kill()


def test_host_loopback_listener_is_out_of_reach(sdk_env: None) -> None:
    """slirp maps 10.0.2.2 to the host's 127.0.0.1; both locks (its flag and the 10/8 rule)
    keep a box from a listener there, and the box's own 127.0.0.1 is its own."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        box = Sandbox.create(template="base", timeout=120)
        try:
            for host in ("10.0.2.2", "127.0.0.1", "0.0.0.0"):
                assert _connect_from_box(box, host, port) != "connected", host
        finally:
            box.kill()
        listener.setblocking(False)  # every attempt above has ended: any would be queued
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_the_rules_deny_host_and_private_ranges_and_the_box_cannot_change_them(
    sdk_env: None,
) -> None:
    box = Sandbox.create(
        template="base", timeout=120, network={"allow_out": ["10.0.0.0/8", "192.168.1.1"]}
    )
    try:
        with _box_netns(box) as netns_fd:
            # Owned by the host's user namespace: root inside the box has no CAP_NET_ADMIN here.
            assert owner_userns_inode(netns_fd) == os.stat("/proc/self/ns/user").st_ino
            rules = _rules(netns_fd)
        prohibited = {
            f"{r['dst']}/{r.get('dstlen', 32)}": int(str(r["priority"]))
            for r in rules
            if r.get("action") == "prohibit"
        }
        allowed = [
            int(str(r["priority"]))
            for r in rules
            if r.get("table") == "main" and r.get("dst") not in (None, "10.0.2.3")
        ]
        for cidr, _ in ALWAYS_DENIED:
            assert cidr in prohibited, cidr
            assert prohibited[cidr] < min(allowed), cidr  # allowOut cannot open them
        flush = box.commands.run("ip rule flush 2>&1; ip rule | wc -l", timeout=10)
        assert int(flush.stdout.strip().splitlines()[-1]) > len(ALWAYS_DENIED)
    finally:
        box.kill()


def test_rules_by_domain_name_are_refused(sdk_env: None) -> None:
    with pytest.raises(Exception, match="domain name"):
        Sandbox.create(template="base", timeout=60, network={"allow_out": ["example.com"]})
