"""`download_url()`/`upload_url()` of a secured box, from the official SDK (sync and async),
used by a plain HTTP client as a browser would: with `E2B_SANDBOX_URL` set the link names no
sandbox, and sandboxd finds the box by the link's signature."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox

TIMEOUT_S = 30


@pytest.fixture
def secured(sdk_env: None) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=120, secure=True)
    yield sandbox
    with contextlib.suppress(Exception):  # already gone
        sandbox.kill()


def test_a_download_link_reads_the_file(secured: Sandbox) -> None:
    secured.files.write("/home/user/report.txt", "the report\n")

    url = secured.download_url("/home/user/report.txt")

    assert "signature=" in url and secured.sandbox_id not in url  # the link names no box
    answer = httpx.get(url, timeout=TIMEOUT_S)
    assert answer.status_code == 200 and answer.text == "the report\n"


def test_an_upload_link_writes_the_file(secured: Sandbox) -> None:
    url = secured.upload_url("/home/user/uploaded.txt")

    answer = httpx.post(url, files={"file": ("uploaded.txt", b"sent by link")}, timeout=TIMEOUT_S)

    assert answer.status_code == 200, answer.text
    assert secured.files.read("/home/user/uploaded.txt") == "sent by link"


def test_a_link_with_an_expiry_works_until_then_and_not_after(secured: Sandbox) -> None:
    secured.files.write("/home/user/soon.txt", "still here")

    fresh = httpx.get(secured.download_url("soon.txt", use_signature_expiration=60))
    stale = httpx.get(secured.download_url("soon.txt", use_signature_expiration=-1))

    assert fresh.status_code == 200 and fresh.text == "still here"
    assert stale.status_code == 401
    assert stale.json() == {"code": 401, "message": "signature is already expired"}


def test_a_link_for_a_user_reads_as_that_user(secured: Sandbox) -> None:
    secured.files.write("/home/user/mine.txt", "user's")

    answer = httpx.get(secured.download_url("/home/user/mine.txt", user="user"))

    assert answer.status_code == 200 and answer.text == "user's"


def test_the_async_sdk_links_work_too(sdk_env: None) -> None:
    async def scenario() -> tuple[str, str]:
        async with asyncio.timeout(TIMEOUT_S):
            sandbox = await AsyncSandbox.create(timeout=120, secure=True)
            try:
                upload = sandbox.upload_url("/home/user/async.txt", use_signature_expiration=60)
                async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                    sent = await client.post(upload, files={"file": ("a.txt", b"async link")})
                    sent.raise_for_status()
                    read = await client.get(sandbox.download_url("/home/user/async.txt"))
                return read.text, await sandbox.files.read("/home/user/async.txt")
            finally:
                await sandbox.kill()

    assert asyncio.run(scenario()) == ("async link", "async link")


def test_a_link_to_a_paused_box_gets_the_proxys_not_running_answer(secured: Sandbox) -> None:
    secured.files.write("/home/user/frozen.txt", "cold")
    url = secured.download_url("/home/user/frozen.txt")
    secured.pause()

    answer = httpx.get(url)

    assert answer.status_code == 502 and answer.json()["sandboxId"] == secured.sandbox_id
