"""The agent's `list` entries are cut to bounds, whatever a process was started with."""

from __future__ import annotations

import json

from sandboxd.agent.agent import (
    CUT_MARKER,
    LIST_PROCESS_FIELD_MAX_CHARS,
    LIST_PROCESS_MAX_ITEMS,
    bounded_process_entry,
)

LONG = "y" * (10 * LIST_PROCESS_FIELD_MAX_CHARS)


def test_an_honest_entry_is_listed_as_started() -> None:
    request: dict[str, object] = {
        "cmd": "/bin/bash",
        "args": ["-c", "ls"],
        "envs": {"A": "1"},
        "cwd": "/home/user",
    }
    request |= {"tag": None, "pty": False}

    assert bounded_process_entry(7, request) == {"pid": 7, **request}


def test_a_hostile_entry_is_cut_and_says_so() -> None:
    many = LIST_PROCESS_MAX_ITEMS + 10
    request = {
        "cmd": LONG, "args": [LONG] * many, "envs": {f"K{n}{LONG}": LONG for n in range(many)},
        "cwd": LONG, "tag": LONG, "pty": True,
    }  # fmt: skip
    entry = bounded_process_entry(7, request)

    assert entry["cmd"] == LONG[:LIST_PROCESS_FIELD_MAX_CHARS] + CUT_MARKER
    assert entry["args"][-1] == "[10 more args cut]"
    assert len(entry["args"]) == LIST_PROCESS_MAX_ITEMS + 1
    assert "[10 more envs cut]" in entry["envs"]
    assert len(entry["envs"]) == LIST_PROCESS_MAX_ITEMS + 1
    fields = 1 + 2 * (2 * LIST_PROCESS_MAX_ITEMS + 3)
    assert len(json.dumps(entry)) < fields * (LIST_PROCESS_FIELD_MAX_CHARS + len(CUT_MARKER) + 8)
