"""A template's tags, builds and a build's log, through a real sandboxd: a build whose step
prints 450 long lines of Markdown is followed to ready with the newest 200 lines kept,
each cut at 2,000 characters, and the Templates page shows them as text in a code block."""

from __future__ import annotations

import pytest

from dashboard.templates.builds import MAX_LINE_CHARS, MAX_LOG_LINES, BuildLog, follow
from e2bapi.actions import create_template, start_template_build
from e2bapi.models.templates import TemplateBuildRequestV3, TemplateBuildStartV2, TemplateStep
from tests.collectors.helpers import wait_for
from tests.dashboard.conftest import Filled
from tests.dashboard.test_pages import assert_no_exception, open_page

CRAFTED = "**bold** ![x](http://127.0.0.1:9/x.png) :red[red]"
LINES = 450
LOUD_STEP = (
    'python3 -c "import sys\n'
    f"for i in range({LINES}): print({CRAFTED!r} + ' %d ' % i + 'y' * 3000)\""
)
BUILD_TIMEOUT_S = 120.0
NAME = "loud-build"


@pytest.fixture(scope="module")
def loud(filled: Filled) -> BuildLog:
    """A template built from `small` with one loud step, followed to its end."""
    created = filled.client.run(
        create_template(TemplateBuildRequestV3(name=NAME, tags=["v1"], memory_mb=256))
    )
    build = TemplateBuildStartV2(
        from_template="small", steps=[TemplateStep(type="RUN", args=[LOUD_STEP])]
    )
    filled.client.run(start_template_build(created.template_id, created.build_id, build))
    followed = [BuildLog(created.template_id, created.build_id)]

    def finished() -> BuildLog | None:
        followed.append(follow(filled.client, followed[-1]))
        return followed[-1] if followed[-1].finished else None

    return wait_for(finished, BUILD_TIMEOUT_S, "the loud build to finish")


def test_a_long_log_keeps_its_newest_lines_each_bounded(loud: BuildLog) -> None:
    assert loud.status == "ready", loud.reason
    assert loud.lines_read >= LINES  # the step's lines and the build's own
    assert len(loud.lines) == MAX_LOG_LINES
    assert loud.lines_dropped == loud.lines_read - MAX_LOG_LINES
    assert max(len(line) for line in loud.lines) <= MAX_LINE_CHARS + 2
    crafted = [line for line in loud.lines if line.startswith(CRAFTED)]
    assert crafted and all(line.endswith(" …") for line in crafted)
    # The newest lines: the step's last one is kept, its first is not.
    assert any(f" {LINES - 1} yyy" in line for line in crafted)
    assert not any(line.startswith(f"{CRAFTED} 0 ") for line in crafted)


def test_the_templates_page_shows_a_build_log_as_text(installed: Filled, loud: BuildLog) -> None:
    wait_for(
        lambda: NAME in {n for names in installed.store.template_catalog()["names"] for n in names},
        15,
        "the new template in the catalog",
    )
    app = open_page("templates")
    app.selectbox(key="templates_open").set_value(loud.template_id).run()
    assert_no_exception(app)
    codes = "\n".join(str(code.value) for code in app.code)
    assert CRAFTED in codes and "Build finished" in codes
    markdown = [str(m.value) for m in app.markdown]
    assert not any(CRAFTED in text for text in markdown)
    assert any(f"of template `{loud.template_id}`: **ready**" in text for text in markdown)
    captions = [str(c.value) for c in app.caption]
    assert f"Tags: `v1` (build `{loud.build_id}`)." in captions


def test_a_failed_build_shows_failed_with_its_reason_and_log(installed: Filled) -> None:
    created = installed.client.run(
        create_template(TemplateBuildRequestV3(name="failing-build", memory_mb=256))
    )
    step = TemplateStep(type="RUN", args=["echo about to fail; exit 3"])
    build = TemplateBuildStartV2(from_template="small", steps=[step])
    installed.client.run(start_template_build(created.template_id, created.build_id, build))
    followed = [BuildLog(created.template_id, created.build_id)]

    def finished() -> BuildLog | None:
        followed.append(follow(installed.client, followed[-1]))
        return followed[-1] if followed[-1].finished else None

    failed = wait_for(finished, BUILD_TIMEOUT_S, "the failing build to finish")
    assert failed.status == "error" and failed.reason
    assert any("about to fail" in line for line in failed.lines)

    wait_for(
        lambda: created.template_id in set(installed.store.template_catalog()["template_id"]),
        15,
        "the failing template in the catalog",
    )
    app = open_page("templates")
    app.selectbox(key="templates_open").set_value(created.template_id).run()
    assert_no_exception(app)
    errors = [str(e.value) for e in app.error]
    assert f"Build `{created.build_id}` of template `{created.template_id}`: **failed**" in errors
    assert any(str(c.value).startswith("Reason: `") for c in app.caption)
    assert "about to fail" in "\n".join(str(code.value) for code in app.code)
