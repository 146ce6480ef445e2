"""The network rules of a create request (E2B's `allow_internet_access`, `network.allowOut`
and `network.denyOut`), checked and kept as IPv4 networks. Applied by network.py."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

# Rules per list (allowOut, denyOut): each is one `ip rule`; E2B's users name a handful.
MAX_EGRESS_RULES = 64


class EgressRuleError(ValueError):
    """An allowOut/denyOut entry sandboxd cannot apply; the message says which."""


@dataclass(frozen=True)
class Egress:
    """A box's way out, as the create request's network rules give it."""

    allow_out: tuple[IPv4Network, ...] = ()
    deny_out: tuple[IPv4Network, ...] = ()

    @property
    def blocks_everything(self) -> bool:
        """Whether nothing outside could be reached anyway (no slirp is started then)."""
        return not self.allow_out and any(net.prefixlen == 0 for net in self.deny_out)


def parse_egress(
    allow_internet_access: bool | None, allow_out: Sequence[str], deny_out: Sequence[str]
) -> Egress:
    """The egress of a create request. `allow_internet_access=False` is `denyOut
    0.0.0.0/0`, as E2B's spec says. EgressRuleError for a domain name (sandboxd filters by
    address only), a malformed or IPv6 entry, or more than MAX_EGRESS_RULES in a list."""
    deny = _networks("denyOut", deny_out)
    if allow_internet_access is False:
        deny += (IPv4Network("0.0.0.0/0"),)
    return Egress(_networks("allowOut", allow_out), deny)


def _networks(name: str, entries: Sequence[str]) -> tuple[IPv4Network, ...]:
    if len(entries) > MAX_EGRESS_RULES:
        raise EgressRuleError(f"{name} has {len(entries)} entries; at most {MAX_EGRESS_RULES}")
    networks = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise EgressRuleError(
                f"{name} entry {entry!r} is not an IPv4 address or CIDR block (sandboxd "
                "does not filter by domain name)"
            ) from None
        if not isinstance(network, IPv4Network):
            raise EgressRuleError(f"{name} entry {entry!r}: boxes have no IPv6")
        networks.append(network)
    return tuple(networks)
