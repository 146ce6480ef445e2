"""File metadata on the host side: what an entry's `metadata` from the agent may hold.

The agent reads it from the file's user.e2b.* extended attributes, which code in the box
can set to anything; the agent leaves out what breaks envd's bounds (agent.py's
metadata_problem), and this checks it again, since the agent's word is untrusted.
"""

from __future__ import annotations

from sandboxd.agent.agent import metadata_problem


def checked_metadata(value: object) -> dict[str, str]:
    """The metadata of an agent's entry ({} when absent); ValueError for anything that is
    not a map of strings within envd's bounds."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("entry metadata must map strings to strings")
    if problem := metadata_problem(value):
        raise ValueError(problem)
    return dict(value)
