"""Serving the Streamlit app from inside the monitor process.

The monitor owns the DuckDB file, so the app cannot run in a `streamlit run` process of its
own: `DashboardServer` serves the Streamlit app with uvicorn on an asyncio loop in the calling
thread, as `streamlit run` does, behind `host_guard.HostGuard` (its own host names only, no
cross-origin WebSocket), and says when it listens (with the real port, also for port 0).
Signals are the caller's business: `stop()` is safe from a signal handler or another thread.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
import uvicorn
from starlette.middleware import Middleware
from streamlit import config as streamlit_config
from streamlit.runtime import Runtime
from streamlit.runtime.runtime_util import get_max_message_size_bytes
from streamlit.web import bootstrap

from dashboard.serving.closed_websocket import ClosedWebSocketGuard
from dashboard.serving.host_guard import HostGuard, allowed_hosts

APP_PATH = Path(__file__).resolve().parent.parent / "app.py"
# Streamlit's defaults for its own server: a ping every 30 s, a dead peer dropped after 30 s.
WEBSOCKET_PING_S = 30
# Open sessions get this long to close on stop before their tasks are cancelled.
GRACEFUL_SHUTDOWN_S = 5
# The kernel's queue of connections not yet accepted (uvicorn's default).
LISTEN_BACKLOG = 2048


class DashboardError(Exception):
    """The dashboard cannot listen (port in use, an address not on this machine)."""


def flag_options(address: str, port: int) -> dict[str, object]:
    """Streamlit's options for the monitor: as set with `streamlit run --<name> <value>`.
    The themes come from `.streamlit/config.toml`; these win over it."""
    return {
        "server.address": address,
        "server.port": port,
        "server.headless": True,
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,
        "global.developmentMode": False,
        # Operators view the app; Streamlit's "Deploy" and developer menu are not for them.
        "client.toolbarMode": "viewer",
        # The monitor prints its own URL line; Streamlit's INFO lines would repeat it.
        "logger.hideWelcomeMessage": True,
        "logger.level": "warning",
    }


def url_for(address: str, port: int) -> str:
    """The URL a browser on this machine opens: `http://127.0.0.1:8501`."""
    host = "127.0.0.1" if address in ("", "0.0.0.0") else address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class DashboardServer:
    """One Streamlit app for `app_path`, behind the Host guard; `run` serves until `stop`.

    Streamlit's own `Server` builds its Starlette app with no way to add middleware, so the
    app is Streamlit's public ASGI `st.App` (which takes middleware) served by uvicorn on a
    socket bound here, the way Streamlit's `Server` serves it.
    """

    def __init__(self, address: str, port: int, app_path: Path = APP_PATH) -> None:
        self.address = address
        self.port = port
        self.app_path = app_path.resolve()
        # Reentrant: stop() may run in a signal handler while this thread holds it.
        self._lock = threading.RLock()
        self._stop_requested = False
        self._server: uvicorn.Server | None = None

    def run(self, on_ready: Callable[[str], None]) -> None:
        """Serve in this thread until `stop()`; call `on_ready(url)` once it listens.

        Raises DashboardError when it cannot listen. Returns at once if `stop()` came first.
        """
        # As `streamlit run` does: config and secrets files next to the script count too.
        streamlit_config._main_script_path = str(self.app_path)
        bootstrap.load_config_options(flag_options(self.address, self.port))
        asyncio.run(self._serve(on_ready))

    def stop(self) -> None:
        """Ask the server to stop; `run` returns once it has. Safe from any thread and from a
        signal handler, before, during or after the start."""
        with self._lock:
            self._stop_requested = True
            if self._server is not None:
                # uvicorn's main loop checks this flag every 0.1 s.
                self._server.should_exit = True

    async def _serve(self, on_ready: Callable[[str], None]) -> None:
        with self._lock:
            if self._stop_requested:
                return
        listening = _listen(self.address, self.port)
        port = int(listening.getsockname()[1])  # the real one, for port 0
        streamlit_config.set_option("server.port", port)
        server = uvicorn.Server(uvicorn.Config(self._asgi_app(), **_uvicorn_options()))
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        with self._lock:
            self._server = server
            server.should_exit = self._stop_requested
        try:
            await server.startup(sockets=[listening])
            if not server.should_exit:
                on_ready(url_for(self.address, port))
                await server.main_loop()
        finally:
            try:
                await server.shutdown(sockets=[listening])
            finally:
                listening.close()
                with self._lock:
                    self._server = None
        if Runtime.exists():
            await Runtime.instance().stopped  # sessions closed, script threads done

    def _asgi_app(self) -> st.App:
        """Streamlit's app with the Host guard in front of every route, and a session's
        second close of its WebSocket kept out of the output (closed_websocket.py)."""
        extra_names = streamlit_config.get_option("server.allowedHosts") or []
        guard = Middleware(HostGuard, allowed=allowed_hosts(self.address, extra_names))
        return st.App(self.app_path, middleware=[guard, Middleware(ClosedWebSocketGuard)])


def _listen(address: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on `address:port`; DashboardError when refused."""
    host = "0.0.0.0" if address == "" else address.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listening = socket.create_server(
            (host, port), family=family, backlog=LISTEN_BACKLOG, dualstack_ipv6=host == "::"
        )
    except OSError as refused:
        if refused.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"cannot listen on {address}:{port}: the port is in use "
                "(set SANDSCOPE_PORT to another one)"
            ) from None
        raise DashboardError(
            f"cannot listen on {address}:{port}: {refused.strerror or refused}"
        ) from None
    listening.setblocking(False)
    return listening


def _uvicorn_options() -> dict[str, Any]:
    """uvicorn's settings as Streamlit's own server sets them from its options."""
    ping_s = streamlit_config.get_option("server.websocketPingInterval") or WEBSOCKET_PING_S
    return {
        "ws": "websockets-sansio",
        "ws_ping_interval": ping_s,
        "ws_ping_timeout": ping_s,
        # A session's messages (a chart, a table) may be large: Streamlit's own cap.
        "ws_max_size": get_max_message_size_bytes(),
        "ws_per_message_deflate": streamlit_config.get_option("server.enableWebsocketCompression"),
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "access_log": False,
        "use_colors": False,
        "log_config": None,  # keep the process's logging as sandscope set it up
        "log_level": "warning",  # uvicorn's "started" lines would repeat the monitor's
    }
