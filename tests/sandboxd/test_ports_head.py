"""The port proxy's reading of a request head and its refusals (sandboxd/ports.py): pure."""

from __future__ import annotations

import pytest

from sandboxd.ports import PortTarget, parse_head, refusal

BOX = PortTarget(netns_fd=7, access_token="t0ken", secured=True)


def _head(*headers: str) -> bytes:
    return ("GET / HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def test_host_names_the_port_and_box_and_tokens_are_collected() -> None:
    head = parse_head(_head("HOST: 8080-abc123.sandbox.localhost:49984", "X-Access-Token: a"))
    assert head is not None
    assert (head.port, head.sandbox_id, head.tokens) == (8080, "abc123", (b"a",))


@pytest.mark.parametrize(
    "host", ["", "sandbox.localhost", "0-abc.x", "70000-abc.x", "80-abc", "80-a/b.x", "x-abc.y"]
)
def test_hosts_naming_no_port_of_a_box_are_refused(host: str) -> None:
    assert parse_head(_head(f"Host: {host}")) is None


def test_a_secured_box_needs_its_token() -> None:
    host = "Host: 80-abc.sandbox.localhost"
    with_token = parse_head(_head(host, "e2b-traffic-access-token: t0ken"))
    wrong = parse_head(_head(host, "e2b-traffic-access-token: other"))
    assert with_token is not None and wrong is not None
    assert refusal(with_token, BOX) is None
    assert refusal(wrong, BOX) == (401, "invalid or missing traffic access token")
    tokenless = PortTarget(netns_fd=7, access_token=None, secured=True)
    assert refusal(with_token, tokenless) is not None  # fails closed


def test_unsecured_unknown_and_reduced_boxes() -> None:
    head = parse_head(_head("Host: 80-abc.sandbox.localhost"))
    assert head is not None
    assert refusal(head, PortTarget(7, "t0ken", secured=False)) is None
    assert refusal(head, None) == (502, "The sandbox abc was not found")
    reduced = refusal(head, PortTarget(None, "t0ken", secured=True))
    assert reduced is not None and reduced[0] == 502
