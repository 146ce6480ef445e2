"""Issue 9: one client cannot hold an unbounded number of envd requests open for one box.

Against a real sandboxd's envd port on 127.0.0.1, with raw HTTP as the SDK sends it:

- uploads whose bodies never finish fill the box's short-call slots; the next call gets 429
  (`resource_exhausted`, which the SDK raises as RateLimitException), and once the uploads
  end the box answers again;
- process streams fill the box's stream slots; the next Start gets 429, while short calls
  still go through (streams never starve them), and the slots come back when streams close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox
from e2b.exceptions import RateLimitException

from sandboxd.envd.inflight import MAX_CALLS_PER_BOX, MAX_STREAMS_PER_BOX

UNARY = {"content-type": "application/json", "connect-protocol-version": "1"}
STREAM = {"content-type": "application/connect+json", "connect-protocol-version": "1"}
# Every request of the test at once, plus the probes, on connections of their own.
CONNECTIONS = MAX_CALLS_PER_BOX + MAX_STREAMS_PER_BOX + 16
REQUEST_TIMEOUT_S = 60.0
SATURATE_TIMEOUT_S = 30.0


@pytest.fixture
def sandbox(sdk_env: None) -> Iterator[Sandbox]:
    box = Sandbox.create(template="base", timeout=180)
    yield box
    with contextlib.suppress(Exception):  # already gone
        box.kill()


def _client(sandbox: Sandbox) -> httpx.AsyncClient:
    """Raw HTTP to the box's envd with the SDK's headers, one connection per request."""
    return httpx.AsyncClient(
        base_url=sandbox.envd_api_url,
        headers=dict(sandbox.connection_config.sandbox_headers),
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
    )


def _envelope(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", 0, len(data)) + data


async def _stat(client: httpx.AsyncClient) -> httpx.Response:
    """A short call: Stat of the home directory."""
    body = {"path": "/home/user"}
    return await client.post("/filesystem.Filesystem/Stat", json=body, headers=UNARY)


async def _start_sleep(client: httpx.AsyncClient) -> httpx.Response:
    """A Start stream of `sleep 120`, open (its headers read) until closed."""
    request = client.build_request(
        "POST",
        "/process.Process/Start",
        content=_envelope({"process": {"cmd": "/bin/sleep", "args": ["120"]}}),
        headers=STREAM,
    )
    return await client.send(request, stream=True)


async def _until_held_files(sandbox: Sandbox, count: int) -> None:
    """Wait until `count` held uploads have opened their files in the box: each took its
    short-call slot first. Checked with a command, a stream, so the check takes no short-call
    slot (a Stat here could take the slot an arriving upload needs and be let in forever)."""
    deadline = time.monotonic() + SATURATE_TIMEOUT_S
    while True:
        listing = await asyncio.to_thread(sandbox.commands.run, "ls /tmp")
        held = [name for name in listing.stdout.split() if name.startswith("held-")]
        if len(held) >= count or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)  # let the uploads' headers reach envd


async def _until_started(client: httpx.AsyncClient) -> int:
    """Start until envd takes one (it has seen the closed streams go), or the deadline."""
    deadline = time.monotonic() + SATURATE_TIMEOUT_S
    while True:
        stream = await _start_sleep(client)
        await stream.aclose()
        if stream.status_code == 200 or time.monotonic() > deadline:
            return stream.status_code
        await asyncio.sleep(0.05)


def test_calls_past_the_limit_get_429_and_the_box_answers_after(sandbox: Sandbox) -> None:
    async def attack() -> None:
        release = asyncio.Event()

        async def held_body() -> AsyncIterator[bytes]:
            yield b"x" * 1024
            await release.wait()

        async def held_upload(client: httpx.AsyncClient, n: int) -> int:
            answer = await client.post(
                "/files",
                params={"path": f"/tmp/held-{n}", "username": "user"},
                content=held_body(),
                headers={"content-type": "application/octet-stream"},
            )
            return answer.status_code

        async with _client(sandbox) as client:
            uploads = [
                asyncio.create_task(held_upload(client, n)) for n in range(MAX_CALLS_PER_BOX)
            ]
            try:
                await _until_held_files(sandbox, MAX_CALLS_PER_BOX)
                refused = await _stat(client)
            finally:
                release.set()
                statuses = await asyncio.gather(*uploads)

            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "resource_exhausted"
            assert f"at most {MAX_CALLS_PER_BOX} short calls" in refused.json()["message"]
            assert statuses == [200] * MAX_CALLS_PER_BOX
            assert (await _stat(client)).status_code == 200

    asyncio.run(attack())


def test_streams_past_the_limit_get_429_and_never_starve_short_calls(sandbox: Sandbox) -> None:
    async def attack() -> None:
        async with _client(sandbox) as client:
            streams: list[httpx.Response] = []
            try:
                for _ in range(MAX_STREAMS_PER_BOX):
                    stream = await _start_sleep(client)
                    streams.append(stream)
                    assert stream.status_code == 200
                one_more = await _start_sleep(client)
                if one_more.status_code == 200:  # let in: a stream that runs for minutes
                    await one_more.aclose()
                else:
                    await one_more.aread()
                short_call = await _stat(client)
                sdk_error = await _sdk_start_error(sandbox.sandbox_id)
            finally:
                for stream in streams:
                    await stream.aclose()

            assert one_more.status_code == 429, one_more.text
            assert one_more.json()["code"] == "resource_exhausted"
            assert short_call.status_code == 200
            assert isinstance(sdk_error, RateLimitException), sdk_error
            assert await _until_started(client) == 200  # closed streams give their slots back

    asyncio.run(attack())


async def _sdk_start_error(sandbox_id: str) -> BaseException | None:
    """What the official SDK raises when it starts a command now (None: it started)."""
    box = await AsyncSandbox.connect(sandbox_id)
    try:
        await box.commands.run("true", background=True)
    except Exception as exc:  # noqa: BLE001 (whatever the SDK raises is what the caller checks)
        return exc
    return None
