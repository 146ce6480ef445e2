"""What sandboxd accepts of an agent's watch pages and entry metadata: the agent is in the
box, so every page is checked before sandboxd keeps or passes on any of it."""

from __future__ import annotations

from typing import Any

import pytest

from sandboxd.agent.agent import (
    METADATA_MAX_BYTES,
    WATCH_NAME_MAX_BYTES,
    WATCH_PAGE_MAX_EVENTS,
)
from sandboxd.agent.messages import AgentError
from sandboxd.agent.metadata import checked_metadata
from sandboxd.agent.watch_events import WatchPage, checked_watcher_id


def test_a_well_formed_page_is_taken_with_names_made_encodable() -> None:
    page = WatchPage.from_result(
        {"events": [{"name": "a.txt", "type": "create"}, {"name": "b\udcff", "type": "chmod"}],
         "more": True}
    )  # fmt: skip

    assert [(e.name, e.type) for e in page.events] == [("a.txt", "create"), ("b?", "chmod")]
    assert page.more is True


@pytest.mark.parametrize(
    "result",
    [
        {"events": "nope", "more": False},
        {"events": [], "more": "yes"},
        {"events": [{"name": "x", "type": "create"}] * (WATCH_PAGE_MAX_EVENTS + 1), "more": False},
        {"events": [{"name": "x" * (WATCH_NAME_MAX_BYTES + 1), "type": "create"}], "more": False},
        {"events": [{"name": "x", "type": "explode"}], "more": False},
        {"events": [{"name": 7, "type": "create"}], "more": False},
        {"events": [{"name": "x", "type": "create", "entry": {"name": "x"}}], "more": False},
    ],
)
def test_a_malformed_page_is_refused(result: dict[str, Any]) -> None:
    with pytest.raises(AgentError) as raised:
        WatchPage.from_result(result)

    assert raised.value.code == "internal"


@pytest.mark.parametrize("value", ["1", 1, "4611686018427387903"])
def test_watcher_ids_are_positive_integers(value: object) -> None:
    assert checked_watcher_id(value) == int(str(value))


@pytest.mark.parametrize("value", ["", "-1", "0", "1e3", "x", True, 1 << 62, "\u0661"])
def test_other_watcher_ids_are_not_found(value: object) -> None:
    with pytest.raises(AgentError) as raised:
        checked_watcher_id(value)

    assert raised.value.code == "not_found"


def test_entry_metadata_within_bounds_is_kept() -> None:
    assert checked_metadata(None) == {}
    assert checked_metadata({"k": "v", "Key 2": "a b"}) == {"k": "v", "Key 2": "a b"}


@pytest.mark.parametrize(
    "value",
    [
        ["k", "v"],
        {"k": 1},
        {"": "v"},
        {"k\n": "v"},
        {"k": "caf\u00e9"},
        {"k": "v" * METADATA_MAX_BYTES},
        {f"k{i}": "" for i in range(500)},
    ],
)
def test_entry_metadata_out_of_bounds_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        checked_metadata(value)
