"""The Templates page in a real browser: Debian's chromium (Playwright) against the real
dashboard serving a store with known samples; the fit table shows the known numbers, and a
template name and a metadata key written as Markdown are shown as text."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from storage import MonitorStore
from storage.rows import SandboxRow
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS
from tests.dashboard.templates.known_store import P95_TEXT, SUGGESTED_TEXT, TEMPLATE, fill

if not CHROMIUM.is_file():
    pytest.skip(
        f"no {CHROMIUM} (Debian's chromium; tools/bootstrap.sh installs it)",
        allow_module_level=True,
    )

REPOSITORY = Path(__file__).resolve().parents[3]
# Outside text: Markdown that Streamlit would draw as bold, red and an image.
CRAFTED = "**bold** :red[red] ![x](http://127.0.0.1:9/x.png)"
SERVE_TIMEOUT_S = 60.0
PAGE_TIMEOUT_MS = 30_000
SERVE = """
import sys
from pathlib import Path
from dashboard.serving import runtime
from dashboard.serving.auth import Logins
from dashboard.serving.server import DashboardServer
from storage import MonitorStore

store = MonitorStore.open(Path(sys.argv[1]))
runtime.install(runtime.Monitor(store, None, Logins(), 5.0, "known samples (tests)"))
DashboardServer("127.0.0.1", 0).run(lambda url: print("ready", url, flush=True))
"""


@contextlib.contextmanager
def dashboard(db_path: Path) -> Iterator[str]:
    """The real dashboard on the store, in its own process; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(db_path)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        timer = threading.Timer(SERVE_TIMEOUT_S, process.kill)
        timer.start()
        assert process.stdout is not None
        line = process.stdout.readline()
        timer.cancel()
        assert line.startswith("ready "), f"the dashboard did not start: {line!r}"
        yield line.split()[1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def add_crafted(path: Path, now: datetime) -> None:
    """A sandbox whose template name and metadata key are `CRAFTED`."""
    with contextlib.closing(MonitorStore.open(path)) as store:
        store.upsert_sandboxes(
            [
                SandboxRow(
                    "crafted1", CRAFTED, None, "running", 1, 256, 512,
                    now - timedelta(minutes=30), now + timedelta(hours=1), {CRAFTED: "v"}, now,
                )
            ]
        )  # fmt: skip


def test_the_templates_page_draws_the_fit_table(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    fill(tmp_path / "known.duckdb", now)
    add_crafted(tmp_path / "known.duckdb", now)
    with dashboard(tmp_path / "known.duckdb") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/templates")
            main = page.get_by_test_id("stMain")
            main.get_by_text("Fit", exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
            # Table cells are drawn on a canvas; their text is in the grid's cells.
            for text in (TEMPLATE, P95_TEXT, SUGGESTED_TEXT, CRAFTED):
                cell = main.locator('[role="gridcell"]').filter(has_text=text).first
                cell.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
            # The metadata keys offered: the crafted one literally, asterisks and all.
            main.get_by_test_id("stSelectbox").click()
            option = page.get_by_role("option").filter(has_text=CRAFTED).first
            option.wait_for(timeout=PAGE_TIMEOUT_MS)
            assert page.locator('img[src*="127.0.0.1:9"]').count() == 0
        finally:
            browser.close()
