"""The Streamlit server inside a process: the URL once it listens (port 0 too), a stop from a
signal handler, a stop before the start, a clear error for a port in use, and the Host guard
in front of every route.

Each server runs in a child process: Streamlit keeps one runtime per process.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dashboard.serving.server import flag_options, url_for

REPOSITORY = Path(__file__).resolve().parents[3]
SERVE = """
import signal, sys
from pathlib import Path
from dashboard.serving.server import DashboardError, DashboardServer

app, port, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = DashboardServer("127.0.0.1", port, app)
signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
if mode == "stop-first":
    server.stop()
try:
    server.run(lambda url: print("ready", url, flush=True))
except DashboardError as failed:
    print("error", failed, flush=True)
    sys.exit(1)
print("returned", flush=True)
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    script = tmp_path / "app.py"
    script.write_text('import streamlit as st\nst.write("hello from the test app")\n')
    return script


def serve(app: Path, port: int, mode: str = "serve") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SERVE, str(app), str(port), mode],
        cwd=app.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout_s: float = 20) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def test_url_for_a_browser_on_this_machine() -> None:
    assert url_for("127.0.0.1", 8501) == "http://127.0.0.1:8501"
    assert url_for("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert url_for("::1", 8501) == "http://[::1]:8501"
    assert url_for("localhost", 9000) == "http://localhost:9000"


def test_flags_keep_the_server_headless_and_quiet() -> None:
    flags = flag_options("127.0.0.1", 0)
    assert flags["server.headless"] is True
    assert flags["browser.gatherUsageStats"] is False
    assert flags["server.fileWatcherType"] == "none"
    assert (flags["server.address"], flags["server.port"]) == ("127.0.0.1", 0)


def test_port_0_serves_on_a_free_port_until_stopped_from_a_signal_handler(app: Path) -> None:
    process = serve(app, 0)
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[0] == "ready", ready
        url = ready[1]
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert httpx.get(f"{url}/_stcore/health", timeout=10).text == "ok"
        assert "<html" in httpx.get(url, timeout=10).text.lower()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code, out, err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            finish(process)
    assert code == 0, err
    assert out.strip().endswith("returned")
    assert time.monotonic() - started < 10
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/_stcore/health", timeout=2)


def test_every_route_answers_only_to_the_dashboards_own_names(app: Path) -> None:
    """The Host guard sits in front of Streamlit's whole app (a newer Streamlit that built
    its app differently would fail here, not only in tests/security)."""
    process = serve(app, 0)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[1]
        port = url.rsplit(":", 1)[1]
        for path in ("/", "/_stcore/health", "/_stcore/host-config"):
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path
            for host in ("attacker.example", f"attacker.example:{port}"):
                refused = httpx.get(f"{url}{path}", headers={"Host": host}, timeout=10)
                assert refused.status_code == 403, (path, host)
        own = httpx.get(f"{url}/_stcore/health", headers={"Host": f"localhost:{port}"})
        assert own.text == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        code, _, err = finish(process)
    assert code == 0, err


def test_a_stop_before_the_start_returns_without_listening(app: Path) -> None:
    code, out, err = finish(serve(app, 0, "stop-first"))
    assert code == 0, err
    assert out.split() == ["returned"]


def test_a_port_in_use_is_a_clear_error(app: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out, err = finish(serve(app, taken.getsockname()[1]))
    assert code == 1, err
    assert "the port is in use (set SANDSCOPE_PORT to another one)" in out
    assert "Traceback" not in err
