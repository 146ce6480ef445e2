"""End to end in a real browser: Debian's chromium, driven by Playwright, against the stack
`make run` starts (`sandscope run` with its demo) on free ports and temporary files.

One stack for the module, in file order: the overview's charts, the triage table, the demo's
OOM incident opened down to its log line and its sandbox, then the actions (pause, delete)
through their dialogs, checked on the page and through the API. Each page is saved as a
screenshot in $SANDSCOPE_TEST_ARTIFACTS (default: pytest's temporary directory); with
$SANDSCOPE_SCREENSHOTS_DIR set, the README's four screenshots are written there too.

Streamlit's tables are drawn on a canvas; their cells are read from the accessible grid the
table keeps beside it (`role="gridcell"`, attached but not visible), and a row is selected
by clicking its checkbox at its place on the canvas.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, running_stack, skip_reason
from tests.sandscope.running_monitor import CGROUP_ROOT, Monitor, sandboxd_pids

if (reason := skip_reason()) is not None:
    pytest.skip(reason, allow_module_level=True)

VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
OOM_WITHIN_S = 120.0  # from the start of the stack: the memory demo is killed at ~40 s
PAGE_TIMEOUT_MS = 30_000  # a page, or a change the collector must see first (1 s polls)
DEMO_ROLES = ("cpu", "memory", "disk", "idle", "timeout")
# Streamlit's tables: a 35 px header, then 35 px rows; the row's checkbox sits at the left.
GRID_HEADER_PX = 35
GRID_ROW_PX = 35
GRID_CHECKBOX_X_PX = 15
MAX_SHOT_PX = 6000
SCROLL_HEIGHT_JS = """() => Math.max(window.innerHeight, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]'),
    (element) => element.scrollHeight))"""


@dataclass(frozen=True)
class App:
    stack: Monitor
    browser: Browser
    started_at: float  # time.monotonic() when the stack was started
    artifacts: Path
    deep_link_sidebar: str  # the sidebar of the very first visit (a deep link), as text


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    artifacts = Path(
        os.environ.get("SANDSCOPE_TEST_ARTIFACTS") or tmp_path_factory.mktemp("browser")
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("stack")
    started_at = time.monotonic()
    with running_stack(home) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Before anything else opened the app: a deep link, as a bookmark would be.
            sidebar = first_visit(browser, f"{stack.url}/events")
            wait_for_demo(stack)
            yield App(stack, browser, started_at, artifacts, sidebar)
        finally:
            browser.close()
    assert sandboxd_pids(home / "sandboxd") == [], "sandboxd outlived `sandscope run`"
    assert not list(CGROUP_ROOT.glob(f"*/{stack.run.env['SANDBOXD_CGROUP_PARENT']}"))
    assert "Traceback" not in "\n".join(stack.run.err), stack.run.show()


def first_visit(browser: Browser, url: str) -> str:
    """Open `url` in a fresh page; the sidebar's text once the page's title is drawn."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        sidebar = page.get_by_test_id("stSidebar")
        with contextlib.suppress(AssertionError):  # the test below says what is missing
            # The navigation may be drawn a moment after the page's title, and the script's
            # own sidebar widgets a moment after the navigation.
            expect(sidebar).to_contain_text("Sandbox detail", timeout=PAGE_TIMEOUT_MS)
            expect(sidebar).to_contain_text("Live refresh", timeout=PAGE_TIMEOUT_MS)
        return sidebar.inner_text()
    finally:
        page.close()


def wait_for_demo(stack: Monitor) -> None:
    deadline = time.monotonic() + 60
    while set(demo_ids(stack)) != set(DEMO_ROLES):
        assert time.monotonic() < deadline, f"the demo sandboxes never all ran: {stack.run.show()}"
        time.sleep(0.5)


def demo_ids(stack: Monitor) -> dict[str, str]:
    """The demo's sandboxes the API lists now, by role."""
    with stack.sandboxd_api() as api:
        listed = api.get("/sandboxes").json()
    return {s["metadata"]["demo"]: s["sandboxID"] for s in listed if "demo" in s["metadata"]}


def sandbox_state(stack: Monitor, sandbox_id: str) -> str | None:
    """The API's state of the sandbox; None once it is gone (404)."""
    with stack.sandboxd_api() as api:
        answer = api.get(f"/sandboxes/{sandbox_id}")
    if answer.status_code == httpx.codes.NOT_FOUND:
        return None
    answer.raise_for_status()
    return str(answer.json()["state"])


@pytest.fixture
def page(app: App) -> Iterator[Page]:
    """A fresh browser context; fails the test on an uncaught script error in the page."""
    context = app.browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    script_errors: list[str] = []
    opened.on("pageerror", lambda error: script_errors.append(str(error)))
    yield opened
    context.close()
    assert not script_errors, f"script errors in the page: {script_errors}"


def open_page(page: Page, app: App, path: str, title: str) -> None:
    page.goto(f"{app.stack.url}{path}")
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=PAGE_TIMEOUT_MS)


def no_failure_shown(page: Page) -> None:
    """Neither a traceback nor the pages' own "Something went wrong" message."""
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Something went wrong")).to_have_count(0)


def charts_drawn(page: Page, count: int) -> Locator:
    """The page's Plotly charts, once `count` of them are drawn."""
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts).to_have_count(count, timeout=PAGE_TIMEOUT_MS)
    for index in range(count):
        expect(charts.nth(index).locator(".main-svg").first).to_be_visible()
    return charts


def cell(scope: Page | Locator, text: str | re.Pattern[str]) -> Locator:
    """Cells of the tables in `scope` whose text matches (attached, drawn on the canvas)."""
    if isinstance(text, str):
        text = re.compile(f"^{re.escape(text)}$")
    return scope.locator('[role="gridcell"]').filter(has_text=text)


def click_row_checkbox(table: Locator, row: int) -> None:
    box = table.bounding_box()
    assert box is not None, "the table is not on screen"
    y = box["y"] + GRID_HEADER_PX + GRID_ROW_PX * row + GRID_ROW_PX / 2
    table.page.mouse.click(box["x"] + GRID_CHECKBOX_X_PX, y)


def screenshot(page: Page, app: App, name: str, readme_name: str | None = None) -> None:
    """The whole page as `name`.png in the artifacts (and the README's, when asked).

    Streamlit scrolls its main area, not the document, so a full-page shot alone would stop
    at the viewport: the viewport is made as tall as the content for the shot.
    """
    content_px = page.evaluate(SCROLL_HEIGHT_JS)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(content_px, MAX_SHOT_PX)})
    try:
        page.screenshot(path=app.artifacts / f"{name}.png", full_page=True)
        readme_dir = os.environ.get("SANDSCOPE_SCREENSHOTS_DIR")
        if readme_dir and readme_name:
            Path(readme_dir).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=Path(readme_dir) / f"{readme_name}.png", full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)


def test_a_deep_link_opened_first_runs_the_whole_app(app: App) -> None:
    """The first visit after the start is /events: the app's own navigation, sidebar (and
    login gate, when logins are set) must come with it, not a bare page script."""
    assert "Live refresh" in app.deep_link_sidebar, app.deep_link_sidebar
    assert "Sandbox detail" in app.deep_link_sidebar, app.deep_link_sidebar


def test_the_overview_shows_charts_with_data(page: Page, app: App) -> None:
    open_page(page, app, "/", "Overview")
    running = page.get_by_test_id("stMetric").filter(has_text="Running")
    expect(running.get_by_test_id("stMetricValue")).to_have_text(
        re.compile(r"^[1-9]\d* of \d+$"), timeout=PAGE_TIMEOUT_MS
    )
    charts = charts_drawn(page, 5)
    for index in range(5):
        # The peak annotation is drawn only when the series has a point.
        expect(
            charts.nth(index).get_by_text(re.compile(r"^peak .+ at \d\d:\d\d:\d\d$"))
        ).to_be_visible()
    expect(page.get_by_text("No data in this range")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^Data \d+ s old"))).to_be_visible()
    no_failure_shown(page)
    screenshot(page, app, "overview")


def test_the_triage_table_lists_the_demo_sandboxes(page: Page, app: App) -> None:
    ids = demo_ids(app.stack)
    open_page(page, app, "/sandboxes", "Sandboxes")
    table = page.get_by_test_id("stDataFrame")
    for role, sandbox_id in ids.items():
        expect(cell(table, sandbox_id)).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
        expect(cell(table, f"demo={role}")).to_have_count(1)
    # The caption counts the rows of the same refresh as the table's: wait for it as well.
    expect(page.get_by_text(re.compile(rf"^{len(ids)} sandboxes\b"))).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    level = cell(table, re.compile(r"^(▲|△|·) ")).first
    expect(level).to_be_attached()  # the Level column's marks, drawn without an emoji font
    no_failure_shown(page)
    screenshot(page, app, "sandboxes", "sandboxes")

    page.get_by_role("textbox", name="Search").fill("demo=memory")
    page.get_by_role("textbox", name="Search").press("Enter")
    expect(page.get_by_text(re.compile(r"^1 sandbox(es)?\b"))).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    expect(cell(table, ids["cpu"])).to_have_count(0)
    click_row_checkbox(table, 0)
    expect(page.get_by_text(f"Selected: {ids['memory']}")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    page.get_by_role("link", name=f"Open {ids['memory']}").click()
    expect(page.get_by_role("heading", name="Sandbox detail", level=1)).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    expect(page).to_have_url(re.compile(f"/sandbox\\?id={ids['memory']}$"))


def test_the_oom_incident_opens_with_its_log_line_and_its_sandbox(page: Page, app: App) -> None:
    memory_id = demo_ids(app.stack)["memory"]
    open_page(page, app, "/incidents", "OOM incidents")
    table = page.get_by_test_id("stDataFrame")
    left_ms = max(5.0, OOM_WITHIN_S - (time.monotonic() - app.started_at)) * 1000
    # The kill is confirmed once sandboxd's kernel record is collected, maybe a poll after the
    # row first shows (as suspected): wait for the confirmed row itself.
    expect(cell(table, memory_id).first).to_be_attached(timeout=left_ms)
    expect(cell(table, "confirmed").first).to_be_attached(timeout=PAGE_TIMEOUT_MS)
    screenshot(page, app, "incidents")

    click_row_checkbox(table, 0)  # newest first: the memory demo's latest kill
    expect(page).to_have_url(re.compile(r"[?&]incident="), timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_text("Log lines before the kill")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    logs = page.get_by_test_id("stDataFrame").nth(1)
    expect(cell(logs, re.compile(r"^OOM kill: python3 \(pid \d+\) killed")).first).to_be_attached()
    summary = page.get_by_text(re.compile(f"^In sandbox {memory_id}, python3 .* OOM killer"))
    expect(summary.first).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Suggested memory")).to_be_visible()
    charts_drawn(page, 1)
    no_failure_shown(page)
    screenshot(page, app, "incident", "incident")

    page.get_by_role("link", name=f"Open sandbox {memory_id}").click()
    expect(page.get_by_role("heading", name=re.compile(f"^{memory_id}: small"))).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    charts = charts_drawn(page, 3)
    expect(charts.nth(1).get_by_text("OOM kill").first).to_be_visible()
    detail_logs = page.get_by_test_id("stDataFrame").first
    expect(cell(detail_logs, re.compile(r"^OOM kill: python3")).first).to_be_attached()
    no_failure_shown(page)
    screenshot(page, app, "sandbox", "sandbox")


def open_dialog(page: Page, button: str, says: str) -> Locator:
    """Press the action's button; its confirmation dialog, once it says `says`."""
    page.get_by_role("button", name=button, exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(says, exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    return dialog


def press(dialog: Locator, button: str) -> None:
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_be_hidden(timeout=PAGE_TIMEOUT_MS)


def test_pausing_a_sandbox_through_the_dialog_changes_its_state(page: Page, app: App) -> None:
    disk_id = demo_ids(app.stack)["disk"]  # the demo leaves a paused disk sandbox paused
    open_page(page, app, f"/sandbox?id={disk_id}", "Sandbox detail")
    says = (
        f"Pause 1 sandbox ({disk_id}): it stops running and keeps its memory and files "
        "until resumed."
    )
    dialog = open_dialog(page, "Pause", says)
    screenshot(page, app, "pause_dialog")
    press(dialog, "Pause")

    expect(page.get_by_text(f"Pause {disk_id}: paused")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    assert sandbox_state(app.stack, disk_id) == "paused"
    expect(page.get_by_text(re.compile(r"^Paused since"))).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    no_failure_shown(page)
    screenshot(page, app, "paused")


def test_delete_asks_for_confirmation_and_the_sandbox_is_gone(page: Page, app: App) -> None:
    cpu_id = demo_ids(app.stack)["cpu"]
    open_page(page, app, f"/sandbox?id={cpu_id}", "Sandbox detail")
    says = f"Delete 1 sandbox ({cpu_id}): it is killed at once and cannot be brought back."
    press(open_dialog(page, "Delete", says), "Cancel")
    assert sandbox_state(app.stack, cpu_id) == "running", "cancelled, yet acted on"

    press(open_dialog(page, "Delete", says), "Delete")

    expect(page.get_by_text(f"Delete {cpu_id}: deleted")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    assert sandbox_state(app.stack, cpu_id) is None
    expect(page.get_by_text(re.compile(r"^Killed through the API at"))).to_be_visible(
        timeout=PAGE_TIMEOUT_MS
    )
    no_failure_shown(page)

    open_page(page, app, "/events", "Events and audit")
    audit = page.get_by_test_id("stDataFrame").nth(1)
    expect(cell(audit, "delete")).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
    expect(cell(audit, cpu_id)).to_have_count(1)
    expect(cell(audit, "pause")).to_have_count(1)
    no_failure_shown(page)
    screenshot(page, app, "events")


def test_the_overview_a_minute_on_still_draws_every_chart(page: Page, app: App) -> None:
    """Last, once the demo has run a while: the README's picture of the overview."""
    open_page(page, app, "/", "Overview")
    charts_drawn(page, 5)
    expect(page.get_by_text("No data in this range")).to_have_count(0)
    no_failure_shown(page)
    screenshot(page, app, "overview_later", "overview")
