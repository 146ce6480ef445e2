"""The envd app served by uvicorn on 127.0.0.1:0 in a thread of its own, in front of
one real agent subprocess (no isolation), and the official SDK pointed at it."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import pytest
import uvicorn
from e2b import Sandbox
from e2b.connection_config import ConnectionConfig
from packaging.version import Version

from sandboxd.agent import AgentClient
from sandboxd.envd import EnvdTarget, create_envd_app

AGENT_SCRIPT = Path(__file__).resolve().parents[3] / "sandboxd" / "agent" / "agent.py"
TIMEOUT_S = 20
SANDBOX_ID = "sbx-local-1"
ACCESS_TOKEN = "secret-envd-token"
ENVD_VERSION = "0.6.4"  # what sandboxd's control plane reports
T = TypeVar("T")


@dataclass
class Target:
    agent: AgentClient
    access_token: str | None
    state: Literal["running", "paused"] = "running"


class EnvdHarness:
    """The server's loop runs in a thread; `run` executes a coroutine there."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="envd-test-loop")
        self.targets: dict[str, EnvdTarget] = {}
        self.url = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(AGENT_SCRIPT), "--home", str(self.home),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.agent = AgentClient.for_process(self.process, request_timeout_s=TIMEOUT_S)
        await self.agent.wait_ready()
        self.target = Target(self.agent, ACCESS_TOKEN)
        self.targets[SANDBOX_ID] = self.target
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = create_envd_app(self.targets.get)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.server_task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT_S)
            self.loop.close()

    async def _stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # don't wait for the SDK's idle keep-alive connections
        await self.server_task
        await self.agent.aclose()
        if self.process.returncode is None:
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def envd(home: Path) -> Iterator[EnvdHarness]:
    harness = EnvdHarness(home)
    try:
        harness.start()
        yield harness
    finally:
        harness.stop()


def make_sandbox(
    url: str, sandbox_id: str = SANDBOX_ID, token: str | None = ACCESS_TOKEN
) -> Sandbox:
    """A Sandbox built the way Sandbox.connect builds one (e2b/sandbox_sync/main.py
    _cls_connect_sandbox), minus the control-plane call."""
    headers = {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983"}
    if token is not None:
        headers["X-Access-Token"] = token
    config = ConnectionConfig(
        sandbox_url=url, api_key="e2b_" + "0" * 40, extra_sandbox_headers=headers
    )
    return Sandbox(
        sandbox_id=sandbox_id,
        sandbox_domain=None,
        envd_version=Version(ENVD_VERSION),
        envd_access_token=token,
        traffic_access_token=None,
        connection_config=config,
    )


@pytest.fixture
def sandbox(envd: EnvdHarness) -> Sandbox:
    return make_sandbox(envd.url)


@pytest.fixture
def http(envd: EnvdHarness) -> Iterator[httpx.Client]:
    headers = {"E2b-Sandbox-Id": SANDBOX_ID, "X-Access-Token": ACCESS_TOKEN}
    with httpx.Client(base_url=envd.url, headers=headers, timeout=TIMEOUT_S) as client:
        yield client


@pytest.fixture
def sandbox_for(envd: EnvdHarness) -> Any:
    """make_sandbox against this server, for other ids and tokens."""

    def build(sandbox_id: str = SANDBOX_ID, token: str | None = ACCESS_TOKEN) -> Sandbox:
        return make_sandbox(envd.url, sandbox_id, token)

    return build
