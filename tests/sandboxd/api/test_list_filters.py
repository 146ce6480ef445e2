"""`Sandbox.list` through the official SDK (sync and async) against a real sandboxd: every
filter of the spec (state, metadata, template, startedAfter), both orders, and paging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox, SandboxInfo, SandboxQuery, SandboxState

TIMEOUT_S = 30
# A metadata value with the characters a query string gives a meaning to.
ODD_VALUE = "a b&c=d%e"


@pytest.fixture
def tagged(api: httpx.Client) -> Iterator[tuple[str, list[str]]]:
    """Three sandboxes started one after the other (base, small, base), tagged with a value
    no other test uses, so other tests' sandboxes never show up in a filtered list."""
    tag = uuid.uuid4().hex
    made: list[str] = []
    for template in ("base", "small", "base"):
        answer = api.post(
            "/sandboxes",
            json={"templateID": template, "timeout": 120, "metadata": {"tag": tag}},
        )
        answer.raise_for_status()
        made.append(answer.json()["sandboxID"])
    yield tag, made
    for sandbox_id in made:
        api.delete(f"/sandboxes/{sandbox_id}")


def every_page(query: SandboxQuery, order: str | None = None, limit: int = 1) -> list[SandboxInfo]:
    paginator = Sandbox.list(query=query, order=order, limit=limit)  # type: ignore[arg-type]
    found: list[SandboxInfo] = []
    while paginator.has_next:
        found.extend(paginator.next_items())
    return found


def ids(infos: list[SandboxInfo]) -> list[str]:
    return [info.sandbox_id for info in infos]


def test_desc_lists_newest_first_and_asc_oldest_first_across_pages(
    sdk_env: None, tagged: tuple[str, list[str]]
) -> None:
    tag, made = tagged
    query = SandboxQuery(metadata={"tag": tag})

    assert ids(every_page(query)) == made[::-1]  # the default is desc
    assert ids(every_page(query, order="desc")) == made[::-1]
    assert ids(every_page(query, order="asc")) == made
    assert ids(every_page(query, order="asc", limit=2)) == made


def test_started_after_keeps_sandboxes_started_at_or_after_it(
    sdk_env: None, tagged: tuple[str, list[str]]
) -> None:
    tag, made = tagged
    second = Sandbox.get_info(made[1])

    def started_after(moment: datetime) -> list[str]:
        return ids(every_page(SandboxQuery(metadata={"tag": tag}, started_after=moment), "asc"))

    assert started_after(second.started_at) == made[1:]  # "at or after": the second is in
    assert started_after(second.started_at + timedelta(microseconds=1)) == made[2:]
    assert started_after(second.started_at + timedelta(days=1)) == []


def test_template_filter_by_id_or_alias_and_unknown_matches_none(
    sdk_env: None, tagged: tuple[str, list[str]]
) -> None:
    tag, made = tagged

    def of_template(template: str) -> list[str]:
        return ids(every_page(SandboxQuery(metadata={"tag": tag}, template=template), "asc"))

    assert of_template("small") == [made[1]]
    assert of_template("base") == [made[0], made[2]]
    assert of_template("no-such-template") == []


def test_state_filter(sdk_env: None, tagged: tuple[str, list[str]]) -> None:
    tag, made = tagged
    Sandbox.pause(made[0])

    def in_state(*states: SandboxState) -> list[str]:
        query = SandboxQuery(metadata={"tag": tag}, state=list(states))
        return ids(every_page(query, "asc"))

    assert in_state(SandboxState.PAUSED) == [made[0]]
    assert in_state(SandboxState.RUNNING) == made[1:]
    assert in_state(SandboxState.RUNNING, SandboxState.PAUSED) == made


def test_metadata_with_query_characters_matches_exactly(sdk_env: None, api: httpx.Client) -> None:
    tag = uuid.uuid4().hex
    body = {"templateID": "base", "timeout": 120, "metadata": {"tag": tag, "odd": ODD_VALUE}}
    sandbox_id = api.post("/sandboxes", json=body).json()["sandboxID"]
    try:
        found = every_page(SandboxQuery(metadata={"tag": tag, "odd": ODD_VALUE}))
        missed = every_page(SandboxQuery(metadata={"tag": tag, "odd": "a b"}))
    finally:
        api.delete(f"/sandboxes/{sandbox_id}")

    assert ids(found) == [sandbox_id]
    assert missed == []


def test_the_async_sdk_filters_and_orders_the_same(
    sdk_env: None, tagged: tuple[str, list[str]]
) -> None:
    tag, made = tagged

    async def listed(query: SandboxQuery, order: str) -> list[str]:
        paginator = AsyncSandbox.list(query=query, order=order, limit=1)  # type: ignore[arg-type]
        found: list[SandboxInfo] = []
        async with asyncio.timeout(TIMEOUT_S):
            while paginator.has_next:
                found.extend(await paginator.next_items())
        return ids(found)

    async def scenario() -> tuple[list[str], list[str], list[str], list[str]]:
        everything = SandboxQuery(metadata={"tag": tag})
        return (
            await listed(everything, "asc"),
            await listed(everything, "desc"),
            await listed(SandboxQuery(metadata={"tag": tag}, template="small"), "asc"),
            await listed(SandboxQuery(metadata={"tag": tag}, template="nope"), "asc"),
        )

    assert asyncio.run(scenario()) == (made, made[::-1], [made[1]], [])


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"order": "sideways"}, "order"),
        ({"startedAfter": "yesterday"}, "startedAfter"),
        ({"startedAfter": "2026-01-01T00:00:00"}, "startedAfter"),  # no time zone
        ({"nextToken": "not-a-token"}, "nextToken"),
        ({"nextToken": "x" * 4096}, "nextToken"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_values_are_400_naming_the_parameter(
    api: httpx.Client, params: dict[str, str], named: str
) -> None:
    answer = api.get("/v2/sandboxes", params=params)
    assert answer.status_code == 400
    assert answer.json()["code"] == 400 and named in answer.json()["message"]


def test_the_deprecated_list_filters_running_sandboxes_by_metadata(
    api: httpx.Client, tagged: tuple[str, list[str]]
) -> None:
    tag, made = tagged
    api.post(f"/sandboxes/{made[0]}/pause").raise_for_status()

    listed = api.get("/sandboxes", params={"metadata": f"tag={tag}"}).json()

    assert sorted(item["sandboxID"] for item in listed) == sorted(made[1:])
