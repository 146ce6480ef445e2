"""The rules a box's network namespace gets (network.py) and the create request's egress
(egress.py): pure, no namespace made."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest

from sandboxd.isolation.egress import MAX_EGRESS_RULES, EgressRuleError, parse_egress
from sandboxd.isolation.network import (
    ALWAYS_DENIED,
    DNS_SERVER,
    TAP_NAME,
    host_networks,
    rule_batch,
    update_batch,
)

HOST_NETS = [IPv4Network("127.0.0.0/8"), IPv4Network("198.51.100.0/24")]


def _lines(allow: list[str], deny: list[str]) -> list[str]:
    return rule_batch(parse_egress(None, allow, deny), HOST_NETS).splitlines()


def _pref(line: str) -> int:
    return int(line.rsplit("pref", 1)[1])


def test_every_host_and_private_network_is_prohibited_before_any_allow() -> None:
    lines = _lines(allow=["10.0.0.0/8", "203.0.113.0/24"], deny=["0.0.0.0/0"])
    prohibited = {line.split()[3]: _pref(line) for line in lines if "prohibit" in line}
    allowed = [_pref(line) for line in lines if "lookup main" in line and DNS_SERVER not in line]
    for cidr in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]:
        assert cidr in prohibited
    for cidr, _ in ALWAYS_DENIED:
        assert prohibited[cidr] < min(allowed)  # an allowOut of 10/8 never opens it
    assert prohibited["198.51.100.0/24"] < min(allowed)  # the host's own network
    assert prohibited["0.0.0.0/0"] > max(allowed)  # E2B: allowOut wins over denyOut


def test_dns_forwarder_is_allowed_first_and_the_tap_comes_up_last() -> None:
    lines = _lines(allow=[], deny=[])
    assert lines[0] == f"rule add to {DNS_SERVER}/32 lookup main pref 100"
    tap_up = next(i for i, line in enumerate(lines) if f"link set {TAP_NAME}" in line)
    last_rule = max(i for i, line in enumerate(lines) if line.startswith("rule add"))
    assert last_rule < tap_up  # no packet leaves before every rule is in
    assert lines[-1].endswith("onlink")  # the gateway itself is prohibited (10/8)


def test_the_loopback_network_gets_one_rule_only() -> None:
    lines = _lines(allow=[], deny=[])
    assert sum("to 127.0.0.0/8 " in line for line in lines) == 1  # ip refuses a duplicate


def test_no_internet_access_denies_everything_and_starts_no_stack() -> None:
    egress = parse_egress(False, [], [])
    assert IPv4Network("0.0.0.0/0") in egress.deny_out
    assert egress.blocks_everything
    assert not parse_egress(False, ["203.0.113.7"], []).blocks_everything
    assert not parse_egress(None, [], []).blocks_everything


@pytest.mark.parametrize("entry", ["example.com", "*.example.com", "::1/128", "10.0.0.0/33"])
def test_entries_sandboxd_cannot_apply_are_refused(entry: str) -> None:
    with pytest.raises(EgressRuleError):
        parse_egress(None, [entry], [])


def test_rule_lists_are_bounded() -> None:
    many = [f"203.0.113.{i}" for i in range(MAX_EGRESS_RULES + 1)]
    with pytest.raises(EgressRuleError, match="at most"):
        parse_egress(None, [], many)


def test_host_networks_are_read_from_ip_json() -> None:
    recorded = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {
            "ifname": "eth0",
            "addr_info": [
                {"family": "inet", "local": "192.0.2.2", "prefixlen": 24},
                {"family": "inet6", "local": "fd00::2", "prefixlen": 64},
            ],
        },
    ]
    found = host_networks(json.dumps(recorded))
    assert found == [IPv4Network("127.0.0.0/8"), IPv4Network("192.0.2.0/24")]


def test_an_update_adds_the_new_rules_before_dropping_the_old() -> None:
    old = parse_egress(None, ["203.0.113.7"], ["0.0.0.0/0"])
    new = parse_egress(None, ["198.51.100.9"], ["0.0.0.0/0"])
    lines = update_batch(old, new).splitlines()
    assert lines == [
        "rule add to 198.51.100.9/32 lookup main pref 2000",
        "rule del to 203.0.113.7/32 lookup main pref 2000",
    ]  # the unchanged deny-all is left in place, never dropped for a moment
    assert update_batch(new, new) == ""
