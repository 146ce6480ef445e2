"""What the agent's directory-watch answers become on the host side.

A watch's events are named by the box (file names), so a page of them is checked here
before sandboxd holds it: at most the agent's page bounds, every name a bounded string,
every type one of envd's five. A page that breaks these is the agent's fault: it is
refused as an `AgentError("internal")`, never passed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from sandboxd.agent.agent import WATCH_NAME_MAX_BYTES, WATCH_PAGE_MAX_EVENTS
from sandboxd.agent.messages import AgentError, EntryInfo

WatchEventType = Literal["create", "write", "remove", "rename", "chmod"]
WATCH_EVENT_TYPES: frozenset[str] = frozenset(get_args(WatchEventType))
# A watcher id as the agent hands them out: a positive int, well inside int64.
MAX_WATCHER_ID = 1 << 62


@dataclass(frozen=True)
class WatchEvent:
    """One change under a watched directory. `name` is relative to the watched directory
    ("." for the directory itself); `entry` is set when asked for and the path still
    exists."""

    name: str
    type: WatchEventType
    entry: EntryInfo | None = None


@dataclass(frozen=True)
class WatchPage:
    """Events taken from a watcher, oldest first; `more` when others wait already."""

    events: list[WatchEvent]
    more: bool

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> WatchPage:
        """The page a watch_take answer holds; AgentError("internal") for any other shape."""
        events, more = result.get("events"), result.get("more")
        if not isinstance(events, list) or not isinstance(more, bool):
            raise _malformed("a page without events or more")
        if len(events) > WATCH_PAGE_MAX_EVENTS:
            raise _malformed(f"a page of over {WATCH_PAGE_MAX_EVENTS} events")
        return cls([_event(item) for item in events], more)


def checked_watcher_id(value: object) -> int:
    """A watcher id from the agent, or from a client (as text); AgentError otherwise."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_WATCHER_ID:
        return value
    raise AgentError("not_found", f"watcher with id {str(value)[:40]!r} not found")


def _event(item: object) -> WatchEvent:
    if not isinstance(item, dict):
        raise _malformed("an event that is not an object")
    name, kind, entry = item.get("name"), item.get("type"), item.get("entry")
    if not isinstance(name, str) or len(name) > WATCH_NAME_MAX_BYTES:
        raise _malformed(f"an event name that is not a string of at most {WATCH_NAME_MAX_BYTES}")
    if kind not in WATCH_EVENT_TYPES:
        raise _malformed(f"an event of unknown type {str(kind)[:20]!r}")
    # Names are the box's bytes, made text with replacement characters; lone surrogates
    # (which JSON can carry) would break the answer's encoding, so they are replaced too.
    name = name.encode("utf-8", "replace").decode("utf-8")
    try:
        info = None if entry is None else EntryInfo.from_result(entry)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _malformed("an event with a malformed entry") from None
    return WatchEvent(name, kind, info)


def _malformed(what: str) -> AgentError:
    return AgentError("internal", f"the agent sent a malformed watch page: {what}")
