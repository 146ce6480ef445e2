"""A box's ports through sandboxd's port proxy (sandboxd/ports.py, issue 11): a secured box
answers only to its own token, never to another box's or to none, and the proxy reaches only
the box's own loopback, never a host listener. Requests go to 127.0.0.1."""

from __future__ import annotations

import os
import socket

import pytest
from e2b import Sandbox

from tests.sandboxd.test_ports import (
    BOX_PORT,
    SERVE,
    boxes,
    get_via_proxy,
    ports_env,
    wait_served,
)

__all__ = ["boxes", "ports_env"]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ports need full isolation (root)")


def test_a_secured_box_wants_its_own_token(ports_env: str, boxes: list[Sandbox]) -> None:
    box_a = Sandbox.create(template="base", timeout=120)
    box_b = Sandbox.create(template="base", timeout=120)
    boxes += [box_a, box_b]
    for box in boxes:
        box.commands.run(SERVE.format(text=box.sandbox_id), background=True)
    host_b = box_b.get_host(BOX_PORT)
    assert wait_served(ports_env, host_b, box_b.traffic_access_token).status_code == 200
    assert get_via_proxy(ports_env, host_b, box_a.traffic_access_token).status_code == 401
    assert get_via_proxy(ports_env, host_b, None).status_code == 401


def test_the_proxy_never_reaches_a_host_listener(ports_env: str, boxes: list[Sandbox]) -> None:
    """A box's port is 127.0.0.1:<port> inside the box: with nothing listening there, a host
    service on the same port number stays out of reach."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        box = Sandbox.create(template="base", timeout=60)
        boxes.append(box)
        answer = get_via_proxy(ports_env, box.get_host(port), box.traffic_access_token)
        assert answer.status_code == 502
        listener.setblocking(False)  # the proxy has answered: a connection would be queued
        with pytest.raises(BlockingIOError):
            listener.accept()
