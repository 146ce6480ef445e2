"""`sandbox.get_host(port)` through sandboxd's port proxy (sandboxd/ports.py), with the
official SDK, sync and async: a server in a box answers at `<port>-<id>.<E2B_DOMAIN>`.
Every request goes to 127.0.0.1, with the SDK's host name in its Host header."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox

from sandboxd.testing import RunningSandboxd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ports need full isolation (root)")
BOX_PORT = 8080
# A server in a box is up within a second; this is for a loaded machine.
SERVER_UP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.05
SERVE = f"cd /tmp && echo {{text}} > index.html && python3 -m http.server {BOX_PORT}"


@pytest.fixture
def ports_env(sdk_env: None, sandboxd: RunningSandboxd, monkeypatch: pytest.MonkeyPatch) -> str:
    """E2B_DOMAIN as sandboxd's start-up lines tell a user; returns the proxy's URL."""
    domain = json.loads((sandboxd.data_dir / "endpoints.json").read_text())["ports_domain"]
    monkeypatch.setenv("E2B_DOMAIN", domain)
    return f"http://127.0.0.1:{domain.rsplit(':', 1)[1]}"


@pytest.fixture
def boxes() -> Iterator[list[Sandbox]]:
    """Sandboxes a test makes; killed after it."""
    made: list[Sandbox] = []
    yield made
    for box in made:
        box.kill()


def get_via_proxy(proxy_url: str, host: str, token: str | None) -> httpx.Response:
    headers = {"Host": host}
    if token is not None:
        headers["e2b-traffic-access-token"] = token
    return httpx.get(f"{proxy_url}/index.html", headers=headers, timeout=10)


def wait_served(proxy_url: str, host: str, token: str | None) -> httpx.Response:
    deadline = time.monotonic() + SERVER_UP_TIMEOUT_S
    while True:
        answer = get_via_proxy(proxy_url, host, token)
        if answer.status_code != 502 or time.monotonic() > deadline:
            return answer
        time.sleep(POLL_INTERVAL_S)


def test_get_host_reaches_a_server_in_the_box(ports_env: str, boxes: list[Sandbox]) -> None:
    box = Sandbox.create(template="base", timeout=120)
    boxes.append(box)
    box.commands.run(SERVE.format(text="from-box-a"), background=True)
    host = box.get_host(BOX_PORT)
    assert host == f"{BOX_PORT}-{box.sandbox_id}.{os.environ['E2B_DOMAIN']}"
    answer = wait_served(ports_env, host, box.traffic_access_token)
    assert answer.status_code == 200
    assert answer.text.strip() == "from-box-a"


def test_requests_share_a_kept_alive_connection(ports_env: str, boxes: list[Sandbox]) -> None:
    box = Sandbox.create(template="base", timeout=120)
    boxes.append(box)
    box.commands.run(SERVE.format(text="kept"), background=True)
    host = box.get_host(BOX_PORT)
    assert wait_served(ports_env, host, box.traffic_access_token).status_code == 200
    headers = {"Host": host, "e2b-traffic-access-token": box.traffic_access_token or ""}
    with httpx.Client(base_url=ports_env, headers=headers, timeout=10) as client:
        texts = [client.get("/index.html").text.strip() for _ in range(3)]
    assert texts == ["kept"] * 3


# A server that switches protocols as a WebSocket server does, then echoes every byte.
UPGRADE_SERVER = f"""
import socket
with socket.create_server(("127.0.0.1", {BOX_PORT})) as server:
    conn, _ = server.accept()
    head = b""
    while not head.endswith(b"\\r\\n\\r\\n"):
        head += conn.recv(1)
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n"
                 b"Connection: Upgrade\\r\\n\\r\\n")
    while data := conn.recv(4096):
        conn.sendall(data)
"""


def test_an_upgraded_connection_relays_both_ways(ports_env: str, boxes: list[Sandbox]) -> None:
    box = Sandbox.create(template="base", timeout=120)
    boxes.append(box)
    box.files.write("/tmp/upgrade.py", UPGRADE_SERVER)
    box.commands.run("python3 /tmp/upgrade.py", background=True)
    proxy_port = int(ports_env.rsplit(":", 1)[1])
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {box.get_host(BOX_PORT)}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\ne2b-traffic-access-token: {box.traffic_access_token}\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + SERVER_UP_TIMEOUT_S
    while True:
        with (
            socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as conn,
            conn.makefile("rb") as reader,
        ):
            conn.sendall(request)
            answer = reader.readline()
            if b" 101 " in answer:
                while reader.readline() not in (b"\r\n", b""):
                    pass  # the rest of the 101 head
                conn.sendall(b"ping")
                assert reader.read(4) == b"ping"
                return
        assert b" 502 " in answer and time.monotonic() < deadline, answer
        time.sleep(POLL_INTERVAL_S)


def test_a_port_nobody_listens_on_is_a_bad_gateway(ports_env: str, boxes: list[Sandbox]) -> None:
    box = Sandbox.create(template="base", timeout=120)
    boxes.append(box)
    answer = get_via_proxy(ports_env, box.get_host(9), box.traffic_access_token)
    assert answer.status_code == 502
    assert "nothing listens on port 9" in answer.text


def test_get_host_async(ports_env: str) -> None:
    async def scenario() -> tuple[int, str]:
        box = await AsyncSandbox.create(template="base", timeout=120)
        try:
            await box.commands.run(SERVE.format(text="from-async"), background=True)
            host = box.get_host(BOX_PORT)
            token = box.traffic_access_token
            answer = await asyncio.to_thread(wait_served, ports_env, host, token)
            return answer.status_code, answer.text.strip()
        finally:
            await box.kill()

    assert asyncio.run(scenario()) == (200, "from-async")
