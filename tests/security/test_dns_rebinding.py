"""Finding 5: DNS rebinding on the loopback dashboard.

A page on `attacker.example` whose name is re-pointed at 127.0.0.1 is, to the browser, the
same origin as the dashboard: it could load the pages and open the session WebSocket, and
on loopback without logins that session is an operator's (it deleted a sandbox). Here
Debian's chromium maps `attacker.example` to 127.0.0.1 (`--host-resolver-rules`) against a
real `sandscope run`; the page and the WebSocket must be refused. httpx then checks every
kind of route with a foreign Host, and cross-origin WebSocket upgrades (another loopback
port's page included), while the dashboard's own names and origin still get in.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS
from tests.sandscope.running_monitor import URL_LINE, free_port, monitor_env
from tests.sandscope.sandscope_process import SandscopeProcess

if not CHROMIUM.is_file():
    pytest.skip(f"no {CHROMIUM} (Debian's chromium)", allow_module_level=True)

ATTACKER = "attacker.example"
PAGE_TIMEOUT_MS = 30_000
# What the attacker's script does from a document under the rebound name: open the
# dashboard's session WebSocket and read a page, both under the attacker's name.
REBIND_SCRIPT = """async () => {
    const opened = await new Promise((resolve) => {
        const socket = new WebSocket(`ws://${location.host}/_stcore/stream`);
        socket.onopen = () => { socket.close(); resolve(true); };
        socket.onerror = () => resolve(false);
        socket.onclose = () => resolve(false);
    });
    const page = await fetch("/", {cache: "no-store"});
    return {opened, status: page.status};
}"""


@dataclass(frozen=True)
class Dashboard:
    """A `sandscope run` serving its dashboard at `url`."""

    run: SandscopeProcess
    url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """`sandscope run` watching an E2B API that does not answer (a closed local port): the
    dashboard is all these tests need, and no sandbox runtime comes into play."""
    home = tmp_path_factory.mktemp("rebinding")
    env = monitor_env(
        home,
        free_port(),
        E2B_API_KEY="e2b_rebinding_test",
        E2B_API_URL=f"http://127.0.0.1:{free_port()}",
    )
    run = SandscopeProcess(env, home, "run")
    try:
        yield Dashboard(run, run.wait_for(URL_LINE).group(1))
    finally:
        run.stop()


@pytest.fixture(scope="module")
def rebinding_browser(stack: Dashboard) -> Iterator[Browser]:
    """chromium resolving attacker.example (and nothing else new) to 127.0.0.1."""
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


def port_of(stack: Dashboard) -> int:
    return int(stack.url.rsplit(":", 1)[1])


def test_a_page_under_the_rebound_name_gets_no_dashboard_and_no_session(
    stack: Dashboard, rebinding_browser: Browser
) -> None:
    """The document the browser loads from attacker.example:<port> comes from the loopback
    dashboard, so its scripts run in loopback's address space (Chromium's local-network
    checks do not stop them, and other browsers have none): they may fetch the dashboard
    and open its session WebSocket under the attacker's name."""
    page = rebinding_browser.new_page()
    try:
        response = page.goto(f"http://{ATTACKER}:{port_of(stack)}/", timeout=PAGE_TIMEOUT_MS)
        assert page.evaluate(REBIND_SCRIPT) == {"opened": False, "status": 403}
        assert response is not None
        assert response.status == 403
        assert "own host names" in page.content()
    finally:
        page.close()


def test_the_dashboard_still_serves_its_own_names(
    stack: Dashboard, rebinding_browser: Browser
) -> None:
    page = rebinding_browser.new_page()
    try:
        response = page.goto(stack.url, timeout=PAGE_TIMEOUT_MS)
        assert response is not None and response.status == 200
        # Streamlit's page only renders once its WebSocket session runs.
        page.get_by_role("heading", name="Overview").wait_for(timeout=PAGE_TIMEOUT_MS)
    finally:
        page.close()


def static_file(stack: Dashboard) -> str:
    """The path of one of Streamlit's JavaScript bundles, as the index page links it."""
    index = httpx.get(f"{stack.url}/", timeout=10).text
    match = re.search(r'src="\.?/?(static/js/[^"]+\.js)"', index)
    assert match, index[:500]
    return f"/{match.group(1)}"


@pytest.mark.parametrize("route", ["/", "static", "/_stcore/health", "/_stcore/host-config"])
def test_a_foreign_host_header_is_refused_on_every_route(stack: Dashboard, route: str) -> None:
    path = static_file(stack) if route == "static" else route
    own = httpx.get(f"{stack.url}{path}", timeout=10)
    assert own.status_code == 200, path
    for foreign in (ATTACKER, f"{ATTACKER}:{port_of(stack)}", "127.0.0.1.attacker.example"):
        refused = httpx.get(f"{stack.url}{path}", headers={"Host": foreign}, timeout=10)
        assert refused.status_code == 403, (path, foreign)


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "LOCALHOST.", "127.0.0.1:{port}", "localhost:{port}"]
)
def test_loopback_names_with_or_without_the_port_are_served(stack: Dashboard, host: str) -> None:
    headers = {"Host": host.format(port=port_of(stack))}
    assert httpx.get(f"{stack.url}/_stcore/health", headers=headers, timeout=10).text == "ok"


def upgrade_status(stack: Dashboard, host: str | None = None, origin: str | None = None) -> int:
    """The HTTP status of a WebSocket upgrade on /_stcore/stream: 101 when switched."""
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode("ascii"),
    }
    if host is not None:
        headers["Host"] = host
    if origin is not None:
        headers["Origin"] = origin
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{stack.url}/_stcore/stream", headers=headers) as response,
    ):
        return response.status_code


def test_a_foreign_host_cannot_upgrade_to_the_websocket(stack: Dashboard) -> None:
    port = port_of(stack)
    assert upgrade_status(stack) == 101  # the dashboard's own name, no Origin: a script
    assert upgrade_status(stack, host=f"{ATTACKER}:{port}") == 403
    assert (
        upgrade_status(stack, host=f"{ATTACKER}:{port}", origin=f"http://{ATTACKER}:{port}") == 403
    )


@pytest.mark.parametrize(
    "origin",
    [
        f"http://{ATTACKER}",
        "http://localhost:1",  # another local server's page (Streamlit trusts any localhost)
        "http://127.0.0.1:1",
        "null",  # a sandboxed frame or a file:// page
    ],
)
def test_a_cross_origin_upgrade_is_refused(stack: Dashboard, origin: str) -> None:
    assert upgrade_status(stack, origin=origin) == 403


def test_the_dashboards_own_origin_may_upgrade(stack: Dashboard) -> None:
    port = port_of(stack)
    assert upgrade_status(stack, origin=stack.url) == 101
    assert upgrade_status(stack, host=f"localhost:{port}", origin=f"http://localhost:{port}") == 101


def test_no_refusal_left_a_traceback(stack: Dashboard) -> None:
    assert "Traceback" not in "\n".join(stack.run.err), stack.run.show()
