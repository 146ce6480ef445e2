"""Finding 6, the dashboard side: text from outside is shown as text, never as Markdown/HTML.

A store holds what a sandbox and its creator can write: a log line and a command line,
an old incident whose evidence quotes a log line, a process name, metadata, template and
alias names (of sandboxes and in the template catalog), a kill reason; the pages' URLs
carry the same text. The real dashboard serves them to Debian's chromium. Each page must
show the text literally, draw no image or link from it, and the browser must send no
request to the image URL in it (a real HTTP listener on 127.0.0.1 counts requests).
Exports keep formula-like cells as text.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from dashboard.common.plain_text import csv_cell, literal
from dashboard.incidents.report import build_report, export_csv_zip, incident_key
from storage import MonitorStore
from storage.rows import (
    EventRow,
    IncidentRow,
    LogLineRow,
    SandboxEndRow,
    SandboxRow,
    TemplateRow,
)
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS

REPOSITORY = Path(__file__).resolve().parents[2]
SANDBOX_ID = "isz8crafted0text0box"
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
runtime.install(runtime.Monitor(store, None, Logins(), 5.0, "crafted store (tests)"))
DashboardServer("127.0.0.1", 0).run(lambda url: print("ready", url, flush=True))
"""


class _Requests(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 (port 0): its base URL and the paths asked of it."""
    seen: list[str] = []
    handler = type("Counting", (_Requests,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def crafted(base_url: str, what: str) -> str:
    """A line with Markdown, HTML, Streamlit's syntax and an image on the listener."""
    return (
        f"OOM kill: ![x]({base_url}/{what}.png) (pid 7) killed "
        f"<img src={base_url}/{what}-html.png> [link]({base_url}/{what}-link) "
        f"**bold** :red[red] $x^2$ &lt;b&gt;"
    )


def fill(path: Path, base_url: str, now: datetime) -> dict[str, str]:
    """The crafted rows, in a new store at `path`; returns the texts by where they are."""
    texts = {
        what: crafted(base_url, what)
        for what in ("log", "metadata", "template", "alias", "reason", "evidence")
    }
    # The kernel's task name is at most 15 bytes, but the page cannot know where it came from.
    texts["process"] = f"![p]({base_url}/p.png)"
    at = now - timedelta(minutes=2)
    with contextlib.closing(MonitorStore.open(path)) as store:
        store.upsert_sandboxes(
            [
                SandboxRow(
                    SANDBOX_ID,
                    texts["template"],
                    texts["alias"],
                    "running",
                    1,
                    128,
                    512,
                    now - timedelta(minutes=10),
                    now + timedelta(minutes=10),
                    {"note": texts["metadata"]},
                    now - timedelta(minutes=3),
                )
            ]
        )
        store.add_events(
            [
                EventRow(
                    "ev-crafted",
                    SANDBOX_ID,
                    "sandbox.lifecycle.killed",
                    at,
                    "team",
                    texts["reason"],
                    "{}",
                )
            ]
        )
        store.mark_ended([SandboxEndRow(SANDBOX_ID, now - timedelta(minutes=3), at, None)])
        store.add_log_lines(
            [LogLineRow(SANDBOX_ID, at - timedelta(seconds=1), "info", texts["log"], "{}")]
        )
        store.add_incidents(
            [
                IncidentRow(
                    SANDBOX_ID,
                    "oom_confirmed",
                    at - timedelta(seconds=30),
                    now,
                    texts["process"],
                    7,
                    None,
                    128 * 2**20,
                    f"log line: {texts['evidence']}",
                )
            ]
        )
        # The template catalog: a name and an alias as the API lists them.
        store.replace_templates(
            [
                TemplateRow(
                    "crafted-template", "build-1", [texts["template"]], [texts["alias"]],
                    1, 128, 512, False, 1, "ready", 1, None,
                    now - timedelta(days=1), now - timedelta(hours=1), "0.2.0", now,
                )
            ]
        )  # fmt: skip
        incident = store.sandbox_incidents(SANDBOX_ID).to_dict("records")[0]
    texts["key"] = incident_key(incident)
    return texts


@contextlib.contextmanager
def dashboard(db_path: Path) -> Iterator[str]:
    """The real dashboard (Streamlit behind its Host guard) on the store; its URL."""
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


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium; tools/bootstrap.sh installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def shown(
    browser: Browser, url: str, visible: list[str], base_url: str, in_tables: Sequence[str] = ()
) -> Page:
    """Open `url`, wait until the main area shows every text of `visible` literally (and
    holds those of `in_tables` in a table's cells, drawn on a canvas), and check that no
    image, link or request of the page points at `base_url`."""
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(url)
    main = page.get_by_test_id("stMain")
    for text in visible:
        main.get_by_text(text).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    for text in in_tables:
        cell = main.locator('[role="gridcell"]').filter(has_text=text).first
        cell.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
    sources = page.eval_on_selector_all("img, a, image", "es => es.map(e => e.src || e.href)")
    assert [s for s in sources if base_url in str(s)] == [], url
    assert [a for a in asked if a.startswith(base_url)] == [], url
    return page


def test_pages_show_outside_text_as_text_and_fetch_nothing(
    tmp_path: Path, listener: tuple[str, list[str]], browser: Browser
) -> None:
    base_url, requests = listener
    texts = fill(tmp_path / "monitor.duckdb", base_url, datetime.now(UTC))

    with dashboard(tmp_path / "monitor.duckdb") as url:
        shown(
            browser,
            f"{url}/incidents?incident={quote(texts['key'])}",
            [texts["evidence"], texts["process"]],
            base_url,
            in_tables=[texts["log"]],
        ).close()
        shown(
            browser,
            f"{url}/sandbox?id={SANDBOX_ID}",
            [texts[what] for what in ("template", "alias", "metadata", "reason", "evidence")],
            base_url,
            in_tables=[texts["log"]],
        ).close()
        # The catalog's names and the fit table's template, in their tables' cells.
        shown(
            browser,
            f"{url}/templates",
            [],
            base_url,
            in_tables=[texts["template"], texts["alias"]],
        ).close()
        # The same text in a link someone sends the operator.
        for path in ("sandbox?id=", "incidents?incident="):
            shown(browser, f"{url}/{path}{quote(texts['log'])}", [texts["log"]], base_url).close()

    assert requests == []


def test_the_csv_export_keeps_formula_like_cells_as_text() -> None:
    formula = '=HYPERLINK("http://127.0.0.1:9/x","open")'
    logs = pd.DataFrame({"ts": [datetime.now(UTC)], "level": ["info"], "message": [formula]})
    incident = {"sandbox_id": SANDBOX_ID, "occurred_at": datetime.now(UTC), "kind": "oom_suspected"}
    report = build_report(incident, pd.DataFrame())

    bundle = zipfile.ZipFile(io.BytesIO(export_csv_zip(report, pd.DataFrame(), logs, logs)))
    rows = list(csv.DictReader(io.StringIO(bundle.read("logs.csv").decode())))

    assert [row["message"] for row in rows] == ["'" + formula]
    assert csv_cell("+1") == "'+1" and csv_cell("a=1") == "a=1" and csv_cell(3) == 3


@pytest.mark.parametrize(
    "text",
    ["plain", "`tick` and ``two``", "` starts", "ends `", "a\nb\r\nc", ":material/home: x"],
)
def test_literal_is_one_code_span_holding_the_text(text: str) -> None:
    made = literal(text)
    fence = made[: len(made) - len(made.lstrip("`"))]

    assert made.endswith(fence) and fence not in made[len(fence) : -len(fence)]
    inner = made[len(fence) : -len(fence)]
    if inner.startswith(" ") and inner.endswith(" "):
        inner = inner[1:-1]
    expected = " ".join(text.replace("\r\n", "\n").split("\n"))
    assert inner.replace("\u2060", "") == expected
