"""Starting sandboxd: both servers, the background loops, and a clean shutdown on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import uvicorn
from starlette.applications import Starlette

from sandboxd.api.app import create_api_app
from sandboxd.auth import load_or_create_key, load_or_create_team_id
from sandboxd.config import SandboxdSettings
from sandboxd.envd.app import create_envd_app
from sandboxd.envd_targets import envd_resolver, envd_targets
from sandboxd.isolation.choose import choose_isolation
from sandboxd.manager import SandboxManager
from sandboxd.ports import port_resolver, start_port_proxy
from sandboxd.private_files import prepare_data_dir, write_private_text
from sandboxd.sampler import run_background
from sandboxd.store import Store
from sandboxd.templates.service import open_templates

log = logging.getLogger(__name__)
KEEP_ALIVE_S = 75  # as common load balancers (60 s) plus a margin


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to sandboxd, which runs two of them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class Endpoints:
    """Where sandboxd listens, as URLs."""

    api_url: str
    envd_url: str
    ports_domain: str  # E2B_DOMAIN for get_host(port): sandbox.localhost:<ports port>


def _listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without
    # it every keep-alive answer waited ~40 ms for a delayed ACK (bench/README.md).
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    listener.setblocking(False)
    return listener


def _server_for(app: Starlette) -> _Server:
    # Keep idle connections well past a 5 s poll: at uvicorn's default of 5 s, a client
    # polling every 5 s sent requests on connections the server was just closing.
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    return _Server(config)


async def serve(settings: SandboxdSettings, out: TextIO = sys.stdout) -> None:
    """Run sandboxd until SIGINT or SIGTERM; then kill every sandbox and stop."""
    prepare_data_dir(settings.data_dir)
    api_key = load_or_create_key(settings.key_file)
    team_id = settings.team_id or load_or_create_team_id(settings.team_id_file)
    store = Store(settings.store_file)
    isolation = choose_isolation(
        data_dir=settings.data_dir,
        cgroup_parent=settings.cgroup_parent,
        host_uid_base=settings.host_uid_base,
        force_reduced=settings.isolation == "reduced",
        allow_shared_user=settings.allow_shared_user,
        box_internet=settings.box_internet,
    )
    manager = SandboxManager(
        isolation=isolation,
        store=store,
        team_id=team_id,
        max_sandboxes=settings.max_sandboxes,
        max_length_s=settings.max_length_s,
        max_processes=settings.max_processes,
    )
    for cleaned in await manager.start():
        log.warning("cleaned up after the last run: %s", cleaned)
    templates = open_templates(settings, manager)
    try:
        api_listener = _listen(settings.host, settings.api_port)
        envd_listener = _listen(settings.host, settings.envd_port)
        ports_listener = _listen(settings.host, settings.ports_port)
    except OSError:
        # A port in use: leave no cgroup parent or mounts directory behind.
        await templates.close()
        await manager.shutdown()
        store.close()
        raise
    endpoints = Endpoints(
        api_url=f"http://{settings.host}:{api_listener.getsockname()[1]}",
        envd_url=f"http://{settings.host}:{envd_listener.getsockname()[1]}",
        ports_domain=f"sandbox.localhost:{ports_listener.getsockname()[1]}",
    )
    servers = [
        _server_for(create_api_app(manager, api_key, templates)),
        _server_for(create_envd_app(envd_resolver(manager), targets=envd_targets(manager))),
    ]
    write_private_text(
        settings.data_dir / "endpoints.json",
        json.dumps(
            {
                "api_url": endpoints.api_url,
                "envd_url": endpoints.envd_url,
                "ports_domain": endpoints.ports_domain,
            }
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    background = asyncio.create_task(
        run_background(manager, settings.sample_interval_s, settings.retention_days)
    )
    serving = [
        asyncio.create_task(server.serve(sockets=[listener]))
        for server, listener in zip(servers, (api_listener, envd_listener), strict=True)
    ]
    port_proxy = await start_port_proxy(ports_listener, port_resolver(manager))
    _announce(out, settings, endpoints, manager)
    try:
        await stop.wait()
    finally:
        port_proxy.close()
        out.write("sandboxd: stopping: killing every sandbox\n")
        out.flush()
        background.cancel()
        await templates.close()
        await manager.shutdown()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving, background, return_exceptions=True)
        store.close()


def _announce(
    out: TextIO, settings: SandboxdSettings, endpoints: Endpoints, manager: SandboxManager
) -> None:
    out.write(
        f"sandboxd ready: api {endpoints.api_url} envd {endpoints.envd_url}\n"
        f"isolation: {manager.isolation_note}\n"
        "Point the E2B SDK and sandscope at it with:\n"
        f"  export E2B_API_URL={endpoints.api_url}\n"
        f"  export E2B_SANDBOX_URL={endpoints.envd_url}\n"
        f"  export E2B_DOMAIN={endpoints.ports_domain}\n"
        f"  export E2B_API_KEY=$(cat {settings.key_file})\n"
        f"  export E2B_TEAM_ID={manager.team_id}\n"
    )
    out.flush()
