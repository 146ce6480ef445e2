"""A box's way out: slirp4netns in front of a network namespace host root owns.

Why slirp4netns (docs/SECURITY.md, "Network"): it is a user-mode TCP/IP stack, so a box's
packets never meet the host's routing or firewall; its outgoing connections are ordinary
sockets of its own. It serves a namespace named by a path (an fd here, no PID needed), says
when it is ready on an fd, refuses the host's loopback (`--disable-host-loopback`), and
after setup drops its capabilities and runs under seccomp (`--enable-sandbox`,
`--enable-seccomp`). pasta (passt) is faster for bulk transfers, but Debian 12 ships a 2023
git snapshot of it; a package download is not bound by the stack's speed.

Neither tool filters destinations, so the filter is the namespace's own policy routing
(`ip rule ... prohibit`), written before its interface comes up. The namespace belongs to
host root (netns.py), so root inside the box cannot flush those rules. Order, first match wins:

    pref 100   slirp's DNS forwarder (10.0.2.3): allowed, DNS keeps working
    pref 1000  private, loopback, link-local (cloud metadata), multicast, reserved ranges,
               and every network the host has an address in: prohibited, always
    pref 2000  the sandbox's `allowOut` CIDRs: allowed (E2B: allow wins over deny)
    pref 3000  its `denyOut` CIDRs: prohibited
    else       the default route, to slirp

No IPv6: slirp runs without it, so a box has no IPv6 route out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from ipaddress import IPv4Network

from sandboxd.isolation.bwrap import BOX_DNS_SERVER
from sandboxd.isolation.egress import Egress

SLIRP4NETNS = "/usr/bin/slirp4netns"
NSENTER = "/usr/bin/nsenter"
IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"
TAP_NAME = "tap0"
# slirp4netns's default network: the box is 10.0.2.100, 10.0.2.2 is slirp (its host
# loopback, refused), 10.0.2.3 its DNS forwarder to the host's resolver.
BOX_ADDRESS = "10.0.2.100/24"
GATEWAY = "10.0.2.2"
DNS_SERVER = BOX_DNS_SERVER
# slirp4netns's largest MTU: fewer, larger packets through the user-mode stack.
MTU = 65520
# slirp4netns is up in ~5-10 ms; this is for a machine under heavy load.
SLIRP_READY_TIMEOUT_S = 10.0

_DNS_PREF, _ALWAYS_PREF, _ALLOW_PREF, _DENY_PREF = 100, 1000, 2000, 3000

# Never reachable from a box, whatever its allowOut says: where host services live.
ALWAYS_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", '"this network" (RFC 1122), never a real destination'),
    ("10.0.0.0/8", "private (RFC 1918); also slirp's own gateway, the host's loopback"),
    ("100.64.0.0/10", "carrier-grade NAT, often a cloud's internal network"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, with the cloud metadata address 169.254.169.254"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking networks, used inside data centres"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, and the broadcast address"),
)


def host_networks(ip_json: str) -> list[IPv4Network]:
    """Every IPv4 network the host has an address in, from `ip -j -4 addr show`."""
    networks = []
    for link in json.loads(ip_json):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                network = f"{info['local']}/{info['prefixlen']}"
                networks.append(IPv4Network(network, strict=False))
    return networks


async def read_host_networks() -> list[IPv4Network]:
    """`host_networks` of this machine now (one `ip` run, a few ms): read for every box, so
    an address the host gained since sandboxd started is denied too."""
    process = await asyncio.create_subprocess_exec(
        IP, "-j", "-4", "addr", "show", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), SLIRP_READY_TIMEOUT_S)
    if process.returncode != 0:
        raise RuntimeError(f"could not list the host's addresses: {err.decode().strip()}")
    return host_networks(out.decode())


def rule_batch(egress: Egress, host_nets: Iterable[IPv4Network]) -> str:
    """The `ip -batch` text that sets up a box's namespace: its rules first, then its
    interface, address and default route (`onlink`: the gateway is itself prohibited)."""
    lines = [f"rule add to {DNS_SERVER}/32 lookup main pref {_DNS_PREF}"]
    # dict.fromkeys: one rule per network (ip refuses a second, and lo's is already here)
    denied = dict.fromkeys([cidr for cidr, _ in ALWAYS_DENIED] + [str(n) for n in host_nets])
    lines += [f"rule add to {cidr} prohibit pref {_ALWAYS_PREF}" for cidr in denied]
    lines += egress_rules(egress)
    lines += [
        f"addr add {BOX_ADDRESS} dev {TAP_NAME}",
        f"link set {TAP_NAME} mtu {MTU} up",
        f"route add default via {GATEWAY} dev {TAP_NAME} onlink",
    ]
    return "".join(line + "\n" for line in lines)


def egress_rules(egress: Egress) -> list[str]:
    """The `ip -batch` lines of the sandbox's own rules: allowOut, then denyOut."""
    allow = [f"rule add to {net} lookup main pref {_ALLOW_PREF}" for net in egress.allow_out]
    deny = [f"rule add to {net} prohibit pref {_DENY_PREF}" for net in egress.deny_out]
    return list(dict.fromkeys(allow + deny))  # a repeated entry is one rule


def update_batch(old: Egress, new: Egress) -> str:
    """The `ip -batch` text that turns `old`'s rules into `new`'s: new ones are added before
    old ones go, so for a moment both apply (the always-denied rules never move)."""
    before, after = egress_rules(old), egress_rules(new)
    adds = [line for line in after if line not in before]
    drops = [line.replace("rule add", "rule del", 1) for line in before if line not in after]
    return "".join(line + "\n" for line in adds + drops)


def slirp_available() -> tuple[bool, str]:
    """Whether slirp4netns and ip are installed; returns (ok, reason)."""
    for tool in (SLIRP4NETNS, IP, NSENTER):
        if not os.access(tool, os.X_OK):
            return False, f"{tool} is not installed (Debian: apt-get install slirp4netns)"
    return True, f"{shutil.which(SLIRP4NETNS) or SLIRP4NETNS} for outbound traffic"


def netns_path(netns_fd: int) -> str:
    """A path to this process's namespace fd that root's children can open, so the fd
    itself is never passed on (a box would inherit it through bwrap)."""
    return f"/proc/{os.getpid()}/fd/{netns_fd}"


def nsenter_argv(netns_fd: int) -> list[str]:
    """A prefix (run as root) that runs the rest of argv inside the namespace."""
    return [NSENTER, f"--net={netns_path(netns_fd)}"]


class BoxNetwork:
    """slirp4netns serving one box's namespace; `close` ends it."""

    def __init__(self, process: asyncio.subprocess.Process, exit_write: int) -> None:
        """`exit_write`: the pipe end whose closing ends slirp4netns (`--exit-fd`), so it
        ends with sandboxd even when sandboxd is killed and never calls `close`."""
        self.process = process
        self._exit_write: int | None = exit_write

    @classmethod
    async def start(cls, netns_fd: int, egress: Egress) -> BoxNetwork:
        """Start slirp4netns on the namespace, wait until its tap is made (reading the host's
        networks meanwhile), then write the rules and bring the tap up. On failure, nothing
        is left running."""
        ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
        exit_read, exit_write = os.pipe2(os.O_CLOEXEC)
        try:
            process = await asyncio.create_subprocess_exec(
                *_slirp_argv(netns_fd, ready_write, exit_read),
                pass_fds=[ready_write, exit_read],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Its own session: a signal to sandboxd's process group does not end it
                # before sandboxd has ended the boxes it serves.
                start_new_session=True,
            )
        except BaseException:
            os.close(exit_write)
            raise
        finally:
            os.close(ready_write)
            os.close(exit_read)
        network = cls(process, exit_write)
        host_nets = asyncio.ensure_future(read_host_networks())
        try:
            with open(ready_read, "rb", buffering=0, closefd=False) as ready:
                loop = asyncio.get_running_loop()
                read = loop.run_in_executor(None, ready.read, 1)
                if await asyncio.wait_for(read, SLIRP_READY_TIMEOUT_S) != b"1":
                    raise RuntimeError("slirp4netns ended before its network was ready")
            await _run_batch(netns_fd, rule_batch(egress, await host_nets))
        except BaseException:
            host_nets.cancel()
            await network.close()
            raise
        finally:
            os.close(ready_read)
        return network

    @staticmethod
    async def replace_rules(netns_fd: int, old: Egress, new: Egress) -> None:
        """Change a live namespace's allowOut/denyOut rules from `old` to `new`."""
        if batch := update_batch(old, new):
            await _run_batch(netns_fd, batch)

    async def close(self) -> None:
        """End slirp4netns and reap it. Idempotent."""
        if self._exit_write is not None:
            os.close(self._exit_write)
            self._exit_write = None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


def _slirp_argv(netns_fd: int, ready_fd: int, exit_fd: int) -> list[str]:
    return [
        SLIRP4NETNS,
        f"--mtu={MTU}",
        # Refuse 10.0.2.2 -> the host's 127.0.0.1 (the rules refuse it too: two locks).
        "--disable-host-loopback",
        # slirp parses every packet a box sends: after setup it drops its capabilities,
        # sees an empty filesystem, and runs under a seccomp filter of its own.
        "--enable-sandbox",
        "--enable-seccomp",
        f"--ready-fd={ready_fd}",
        f"--exit-fd={exit_fd}",
        "--netns-type=path",
        netns_path(netns_fd),
        TAP_NAME,
    ]


async def _run_batch(netns_fd: int, batch: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *nsenter_argv(netns_fd), IP, "-batch", "-",
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(batch.encode()), SLIRP_READY_TIMEOUT_S)
    if process.returncode != 0:
        raise RuntimeError(f"could not set up the box's network: {stderr.decode().strip()}")
