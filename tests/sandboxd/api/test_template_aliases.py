"""`Template.exists` through the official SDK (sync and async) against a real sandboxd:
`GET /templates/aliases/{alias}` knows the built-in templates and nothing else."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from e2b import AsyncTemplate, Template

from sandboxd.templates import TEMPLATES

TIMEOUT_S = 30


@pytest.mark.parametrize("alias", sorted(t.alias for t in TEMPLATES.values()))
def test_every_built_in_template_exists(sdk_env: None, alias: str) -> None:
    assert Template.exists(alias) is True


def test_an_unknown_alias_does_not_exist(sdk_env: None) -> None:
    assert Template.exists("no-such-template") is False
    assert Template.exists("team/no-such-template") is False  # a namespaced name


def test_the_async_sdk_agrees(sdk_env: None) -> None:
    async def scenario() -> tuple[bool, bool]:
        async with asyncio.timeout(TIMEOUT_S):
            return await AsyncTemplate.exists("base"), await AsyncTemplate.exists("nope")

    assert asyncio.run(scenario()) == (True, False)


def test_the_answer_names_the_template(api: httpx.Client) -> None:
    found = api.get("/templates/aliases/small")
    missing = api.get("/templates/aliases/nope")

    assert found.status_code == 200
    assert found.json() == {"templateID": TEMPLATES["small"].template_id, "public": True}
    assert missing.status_code == 404 and missing.json()["code"] == 404
