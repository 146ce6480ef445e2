"""The remedy for an OOM: what a right-sized template would be (pure rules), and the
dialog, its read-only hiding and its audit on the incident page of the session's monitor
(a real sandboxd whose `small` sandbox the kernel OOM-killed, real collectors, AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.actions.runner import ActionRunner
from dashboard.actions.template_remedy import (
    AUDIT_ACTION,
    CPU_BOUND_PCT,
    TemplateRemedy,
    new_template_name,
    plan_remedy,
    start_line,
)
from dashboard.incidents.report import incident_key
from dashboard.serving.auth import local_actor
from dashboard.templates.remedy_ui import BUTTON_LABEL
from e2bapi.actions import create_template, get_template, list_templates
from e2bapi.models.templates import TemplateBuildRequestV3
from tests.collectors.helpers import wait_for
from tests.dashboard.conftest import Filled, replace_monitor
from tests.dashboard.test_pages import assert_no_exception, open_page, shown_text

BUILD_TIMEOUT_S = 120.0
APP = str(Path(__file__).resolve().parents[3] / "dashboard" / "app.py")


@pytest.mark.parametrize(
    ("source", "memory_mb", "expected"),
    [
        ("small", 256, "small-256"),
        ("team-slug/My Agent:v2", 1024, "my-agent-1024"),  # namespace and tag left out
        ("**bold**", 512, "bold-512"),
        ("x" * 200, 8192, "x" * 123 + "-8192"),  # at most 128 characters
    ],
)
def test_the_new_name_follows_e2b_name_rules(source: str, memory_mb: int, expected: str) -> None:
    name = new_template_name(source, memory_mb)
    assert name == expected and len(name) <= 128


def test_a_cpu_bound_template_gets_twice_the_vcpus_and_the_dialog_says_why() -> None:
    bound = plan_remedy("agent", 1024, 2, CPU_BOUND_PCT, "its CPU p95", {"base"}, 512)
    assert (bound.cpu_count, bound.cpu_raised, bound.name_taken) == (4, True, False)
    text = bound.confirmation()
    assert "Create a new template named agent-1024, built from template agent" in text
    assert "1024 MiB of memory (was 512 MiB) and 4 vCPUs" in text
    assert "raised from 2: it was CPU-bound (its CPU p95 90 %, at or above 90 %)" in text
    calm = plan_remedy("agent", 1024, 2, CPU_BOUND_PCT - 0.5, "its CPU p95", set(), 512)
    assert calm.cpu_count == 2 and "not CPU-bound" in calm.confirmation()
    unknown = plan_remedy("agent", 1024, 8, None, "its CPU p95", set())
    assert unknown.cpu_count == 8 and "no CPU samples" in unknown.confirmation()
    assert plan_remedy("agent", 256, 8, 99.0, "x", set()).cpu_count == 8  # at most 8
    assert start_line(bound) == 'Sandbox.create("agent-1024")'


def test_a_taken_name_is_said_and_never_sent() -> None:
    plan = plan_remedy("small", 256, 1, 10.0, "x", {"team/small-256", "small"})
    assert plan.name_taken
    assert "A template named small-256 exists already: nothing can be created." in (
        plan.confirmation()
    )


def test_memory_below_e2b_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="128 or more"):
        plan_remedy("small", 64, 1, None, "x", set())


def _oom_incident_page(installed: Filled) -> AppTest:
    incidents = installed.store.sandbox_incidents(installed.oom_id)
    confirmed = incidents[incidents["kind"] == "oom_confirmed"].iloc[0]
    key = incident_key(
        {"sandbox_id": installed.oom_id, "occurred_at": confirmed["occurred_at"].to_pydatetime()}
    )
    app = open_page("incidents", incident=key)
    assert_no_exception(app)
    return app


def test_read_only_mode_hides_the_remedy(installed: Filled) -> None:
    assert BUTTON_LABEL in {b.label for b in _oom_incident_page(installed).button}
    replace_monitor(installed, actions=None)
    read_only = _oom_incident_page(installed)
    assert BUTTON_LABEL not in {b.label for b in read_only.button}


def test_the_remedy_from_the_oom_incident_says_what_it_creates_and_is_audited(
    installed: Filled,
) -> None:
    app = _oom_incident_page(installed)
    next(b for b in app.button if b.label == BUTTON_LABEL).click().run()
    assert_no_exception(app)
    # `small` has 128 MiB and 1 vCPU; a confirmed kill needs at least 128 MiB + 25 %.
    dialog = shown_text(app)
    assert "Create a new template named `small-256`, built from template `small`" in dialog
    # A memory bomb allocating flat out may or may not use 90 % of its one vCPU (it does on
    # a loaded machine): the dialog says which it judged, and everything after must agree.
    cpu_bound = "vCPUs raised from 1" in dialog
    assert cpu_bound or "vCPUs kept" in dialog
    cpus = 2 if cpu_bound else 1
    vcpus = f"{cpus} vCPU{'s' if cpus != 1 else ''}"
    assert f"256 MiB of memory (was 128 MiB) and {vcpus}" in dialog

    app.button(key="remedy_create").click().run()
    assert_no_exception(app)
    audit = installed.store.actions_latest(20)
    rows = audit[audit["action"] == AUDIT_ACTION]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["actor"] == local_actor() and list(row["sandbox_ids"]) == [installed.oom_id]
    # What the page said is what the audit holds, success or not.
    said = shown_text(app)
    assert row["detail"] in said.replace("`", "")
    assert row["outcome"] == "ok"
    assert f"template small-256 from small, 256 MiB, {cpus} vCPU: created" in row["detail"]

    # The build, through the API; then the page shows it ready, with the line to use it.
    listed = {t.template_id: t for t in installed.client.run(list_templates())}
    (new,) = [t for t in listed.values() if "small-256" in t.names + t.aliases]
    assert (new.memory_mb, new.cpu_count) == (256, cpus)

    def build_finished() -> str | None:
        builds = installed.client.run(get_template(new.template_id)).builds
        return builds[0].status if builds and builds[0].status in ("ready", "error") else None

    assert wait_for(build_finished, BUILD_TIMEOUT_S, "the build to finish") == "ready"
    app.run()
    assert_no_exception(app)
    codes = [str(code.value) for code in app.code]
    assert 'Sandbox.create("small-256")' in codes


def test_a_name_taken_since_the_last_listing_is_refused_and_audited(installed: Filled) -> None:
    # E2B would start a new build of the template that has the name: never sent.
    taken = installed.client.run(
        create_template(TemplateBuildRequestV3(name="taken-512", memory_mb=512))
    )
    plan = plan_remedy("taken", 512, 1, None, "x", set())  # the catalog does not know it yet
    assert not plan.name_taken
    started = TemplateRemedy.of(ActionRunner(installed.client, installed.store)).start(plan, "ops")
    assert not started.ok
    assert started.message == (
        f"template taken-512 from taken, 512 MiB, 1 vCPU not created: template "
        f"{taken.template_id} is named taken-512 already"
    )
    builds = installed.client.run(get_template(taken.template_id)).builds
    assert len(builds) == 1  # no second build of it
    audit = installed.store.actions_latest(20)
    row = audit[(audit["action"] == AUDIT_ACTION) & (audit["actor"] == "ops")].iloc[0]
    assert (row["outcome"], row["detail"]) == ("failed", started.message)
