"""sandscope's own client (`e2bapi.actions.templates`, what `sandscope api` and the
dashboard's template remedy use) against a real sandboxd: create, start a build, poll it to
ready, read the template and its builds, publish it, and start a sandbox from it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from e2bapi import E2BClient
from e2bapi.actions import templates
from e2bapi.errors import NotFoundError
from e2bapi.models.templates import TemplateBuildRequestV3, TemplateBuildStartV2, TemplateStep
from sandboxd.testing import RunningSandboxd

TIMEOUT_S = 60


@pytest.fixture
def client(sandboxd: RunningSandboxd) -> Iterator[E2BClient]:
    http = httpx.Client(base_url=sandboxd.api_url, headers={"X-API-Key": sandboxd.api_key})
    with E2BClient(http) as e2b:
        yield e2b


def _wait_ready(client: E2BClient, template_id: str, build_id: str) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        info = client.run(templates.template_build_status(template_id, build_id, len(messages)))
        messages += [entry.message for entry in info.log_entries]
        if info.status in ("ready", "error") and not info.log_entries:
            assert info.status == "ready", info.reason
            return messages
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} did not end in {TIMEOUT_S} s")


def test_a_right_sized_template_from_base(client: E2BClient, api: httpx.Client) -> None:
    request = TemplateBuildRequestV3(name="e2bapi-sized", memory_mb=384, cpu_count=1)
    created = client.run(templates.create_template(request))
    start = TemplateBuildStartV2(
        from_template="base",
        steps=[TemplateStep(type="RUN", args=["echo sized > /home/user/marker"])],
    )

    client.run(templates.start_template_build(created.template_id, created.build_id, start))
    messages = _wait_ready(client, created.template_id, created.build_id)
    got = client.run(templates.get_template(created.template_id))
    listed = {t.template_id: t for t in client.run(templates.list_templates())}
    published = client.run(templates.update_template(created.template_id, public=True))
    box = api.post("/sandboxes", json={"templateID": "e2bapi-sized", "timeout": 60}).json()
    detail = api.get(f"/sandboxes/{box['sandboxID']}").json()
    api.delete(f"/sandboxes/{box['sandboxID']}")

    assert any("echo sized" in message for message in messages)
    assert [build.build_id for build in got.builds] == [created.build_id]
    assert got.builds[0].status == "ready" and got.builds[0].memory_mb == 384
    assert listed[created.template_id].memory_mb == 384
    assert published.names == ["e2bapi-sized"]
    assert (detail["memoryMB"], detail["cpuCount"]) == (384, 1)


def test_an_unknown_build_is_not_found(client: E2BClient) -> None:
    created = client.run(templates.create_template(TemplateBuildRequestV3(name="e2bapi-none")))

    # sandboxd answers E2B's 400 "Build '<id>' not found", which the client reads as such.
    with pytest.raises(NotFoundError):
        client.run(templates.template_build_status(created.template_id, "no-such-build"))
