"""Template records through the API and the official SDK: create, list, get, update,
delete, tags and aliases, E2B's status codes for bad input, and all of it kept across a
restart of sandboxd."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from e2b import AsyncTemplate, Template

from sandboxd.testing import api_client, running_sandboxd

TIMEOUT_S = 30


def _create(api: httpx.Client, name: str, **fields: object) -> dict[str, object]:
    answer = api.post("/v3/templates", json={"name": name, **fields})
    assert answer.status_code == 202, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_create_answers_as_e2b(api: httpx.Client) -> None:
    body = _create(api, "rec-create:v1", tags=["stable"], cpuCount=1, memoryMB=256)

    assert set(body) == {"templateID", "buildID", "public", "aliases", "names", "tags"}
    assert body["names"] == ["rec-create"] and body["aliases"] == ["rec-create"]
    assert body["tags"] == ["v1", "stable"] and body["public"] is False
    listed = {t["templateID"]: t for t in api.get("/v2/templates").json()}
    created = listed[str(body["templateID"])]
    assert (created["cpuCount"], created["memoryMB"]) == (1, 256)
    assert created["buildStatus"] == "waiting" and created["buildCount"] == 1
    assert {"base", "small"} <= set(listed)  # the built-in ones stay listed


def test_a_name_the_team_has_gets_a_new_build_of_the_same_template(api: httpx.Client) -> None:
    first = _create(api, "rec-again")
    second = _create(api, "rec-again")

    assert first["templateID"] == second["templateID"]
    assert first["buildID"] != second["buildID"]
    got = api.get(f"/templates/{first['templateID']}").json()
    assert [b["buildID"] for b in got["builds"]] == [second["buildID"], first["buildID"]]


def test_get_pages_the_builds(api: httpx.Client) -> None:
    made = [_create(api, "rec-pages")["buildID"] for _ in range(3)]
    template_id = _create(api, "rec-pages")["templateID"]

    first = api.get(f"/templates/{template_id}", params={"limit": 2})
    token = first.headers["X-Next-Token"]
    rest = api.get(f"/templates/{template_id}", params={"limit": 2, "nextToken": token})

    ids = [b["buildID"] for b in first.json()["builds"] + rest.json()["builds"]]
    assert len(ids) == 4 and set(made) <= set(ids)
    assert "X-Next-Token" not in rest.headers


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "'name' is required"),
        ({"name": "Upper"}, 400, "invalid template name"),
        ({"name": "a" * 129}, 400, "at most 128 characters"),
        ({"name": "ok", "tags": ["bad tag"]}, 400, "invalid tag"),
        ({"name": "ok", "tags": [f"t{i}" for i in range(11)]}, 400, "at most 10 tags"),
        ({"name": "ok", "memoryMB": 1}, 400, "memoryMB must be between"),
        ({"name": "base"}, 400, "taken by a built-in template"),
    ],
)
def test_bad_input_is_a_400_that_says_why(
    api: httpx.Client, body: dict[str, object], status: int, text: str
) -> None:
    answer = api.post("/v3/templates", json=body)

    assert answer.status_code == status
    assert answer.json()["code"] == status and text in answer.json()["message"]


def test_unknown_template_and_build(api: httpx.Client) -> None:
    template_id = _create(api, "rec-unknown")["templateID"]

    assert api.get("/templates/nope").status_code == 404
    status = api.get(f"/templates/{template_id}/builds/no-such-build/status")
    # E2B's quirk: an unknown build's status is a 400 that says "not found".
    assert status.status_code == 400
    assert status.json()["message"] == "Build 'no-such-build' not found"


def test_patch_makes_public_and_built_ins_cannot_change(api: httpx.Client) -> None:
    template_id = _create(api, "rec-public")["templateID"]

    patched = api.patch(f"/v2/templates/{template_id}", json={"public": True})

    assert patched.status_code == 200 and patched.json() == {"names": ["rec-public"]}
    assert api.get("/templates/aliases/rec-public").json()["public"] is True
    assert api.patch("/v2/templates/base", json={"public": False}).status_code == 403
    assert api.delete("/templates/base").status_code == 403
    bad = api.patch(f"/v2/templates/{template_id}", json={"public": "yes"})
    assert bad.status_code == 400


def test_delete_forgets_the_template(api: httpx.Client, sdk_env: None) -> None:
    template_id = _create(api, "rec-delete")["templateID"]
    assert Template.exists("rec-delete") is True

    assert api.delete(f"/templates/{template_id}").status_code == 204

    assert Template.exists("rec-delete") is False
    assert api.get(f"/templates/{template_id}").status_code == 404
    assert api.delete(f"/templates/{template_id}").status_code == 404


def test_tags_through_the_sdk(api: httpx.Client, sdk_env: None) -> None:
    build_id = _create(api, "rec-tags:v1")["buildID"]

    assigned = Template.assign_tags("rec-tags:v1", ["prod", "latest"])
    tags = {tag.tag: tag.build_id for tag in Template.get_tags("rec-tags")}
    Template.remove_tags("rec-tags", ["latest"])

    assert assigned.build_id == build_id and sorted(assigned.tags) == ["latest", "prod"]
    assert tags == {"v1": build_id, "prod": build_id, "latest": build_id}
    assert {tag.tag for tag in Template.get_tags("rec-tags")} == {"v1", "prod"}
    missing = api.request("DELETE", "/templates/tags", json={"name": "rec-tags", "tags": ["no"]})
    assert missing.status_code == 404


def test_the_async_sdk_sees_tags_and_aliases(api: httpx.Client, sdk_env: None) -> None:
    build_id = _create(api, "rec-async")["buildID"]

    async def scenario() -> tuple[bool, str]:
        async with asyncio.timeout(TIMEOUT_S):
            exists = await AsyncTemplate.exists("rec-async")
            info = await AsyncTemplate.assign_tags("rec-async", ["blue"])
            return exists, info.build_id

    assert asyncio.run(scenario()) == (True, build_id)


def test_templates_survive_a_restart(tmp_path: Path) -> None:
    with running_sandboxd(tmp_path) as first, api_client(first) as api:
        made = _create(api, "rec-restart:v1", cpuCount=1, memoryMB=256)
        api.patch(f"/v2/templates/{made['templateID']}", json={"public": True})
        api.post("/templates/tags", json={"target": "rec-restart:v1", "tags": ["kept"]})
        gone = _create(api, "rec-gone")
        api.delete(f"/templates/{gone['templateID']}")

    with running_sandboxd(tmp_path) as second, api_client(second) as api:
        listed = {t["names"][0]: t for t in api.get("/v2/templates").json()}
        tags = api.get(f"/templates/{made['templateID']}/tags").json()
        build = api.get(f"/templates/{made['templateID']}/builds/{made['buildID']}/status")

    kept = listed["rec-restart"]
    assert "rec-gone" not in listed
    assert (kept["templateID"], kept["public"], kept["memoryMB"]) == (
        made["templateID"], True, 256,
    )  # fmt: skip
    assert {t["tag"] for t in tags} == {"v1", "kept"}
    assert build.status_code == 200 and build.json()["status"] == "waiting"


def test_at_most_the_set_number_of_templates(tmp_path: Path) -> None:
    limited = running_sandboxd(tmp_path, SANDBOXD_MAX_TEMPLATES="2")
    with limited as server, api_client(server) as api:
        _create(api, "rec-one")
        _create(api, "rec-two")
        third = api.post("/v3/templates", json={"name": "rec-three"})
        again = api.post("/v3/templates", json={"name": "rec-one"})  # a new build is fine

    assert third.status_code == 400 and "SANDBOXD_MAX_TEMPLATES" in third.json()["message"]
    assert again.status_code == 202


@pytest.mark.parametrize(
    ("start", "text"),
    [
        ({"steps": [{"type": "RUN", "args": ["true"]}]}, "one of 'fromImage' and 'fromTemplate'"),
        ({"fromTemplate": "base", "steps": [{"type": "FROB"}]}, "unknown type 'FROB'"),
        ({"fromTemplate": "base", "steps": [{"type": "COPY", "args": ["a", "b"]}]}, "filesHash"),
        ({"fromTemplate": "base", "steps": "RUN true"}, "'steps' must be a list"),
        (
            {"fromTemplate": "base", "steps": [{"type": "RUN", "args": ["x" * 60000]}] * 5},
            "over 262144 characters",
        ),
    ],
)
def test_a_bad_build_start_is_a_400(api: httpx.Client, start: dict[str, object], text: str) -> None:
    made = _create(api, "rec-bad-start")

    answer = api.post(f"/v2/templates/{made['templateID']}/builds/{made['buildID']}", json=start)

    assert answer.status_code == 400 and text in answer.json()["message"]
