"""Serving the Streamlit app from inside the monitor process.

The monitor owns the DuckDB file, so the app cannot run in a `streamlit run` process of its
own: `DashboardServer` runs Streamlit's server on an asyncio loop in the calling thread, the
way `streamlit run` does, and says when it listens (with the real port, also for port 0).
Signals are the caller's business: `stop()` is safe from a signal handler or another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from streamlit import config as streamlit_config
from streamlit.web import bootstrap
from streamlit.web.server import Server

APP_PATH = Path(__file__).resolve().parent / "app.py"


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
    """One Streamlit server for `app_path`; `run` serves until `stop` is called."""

    def __init__(self, address: str, port: int, app_path: Path = APP_PATH) -> None:
        self.address = address
        self.port = port
        self.app_path = app_path.resolve()
        # Reentrant: stop() may run in a signal handler while this thread holds it.
        self._lock = threading.RLock()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None

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
            loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():
            # A closed loop between the check and the call means the server is gone anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(server.stop)

    async def _serve(self, on_ready: Callable[[str], None]) -> None:
        server = Server(str(self.app_path), is_hello=False)
        with self._lock:
            if self._stop_requested:
                return
        try:
            await server.start()
        except SystemExit:
            # Streamlit exits the process when a port given explicitly is taken.
            raise DashboardError(
                f"cannot listen on {self.address}:{self.port}: the port is in use "
                "(set SANDSCOPE_PORT to another one)"
            ) from None
        except OSError as refused:
            raise DashboardError(
                f"cannot listen on {self.address}:{self.port}: {refused.strerror or refused}"
            ) from None
        bootstrap.prepare_streamlit_environment(str(self.app_path))
        with self._lock:
            self._loop, self._server = asyncio.get_running_loop(), server
            stop_now = self._stop_requested
        if stop_now:
            server.stop()
        else:
            port = int(streamlit_config.get_option("server.port"))  # the real one, for port 0
            on_ready(url_for(self.address, port))
        try:
            await server.stopped
        finally:
            with self._lock:
                self._loop, self._server = None, None
