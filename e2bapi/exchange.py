"""Actions as values: what to send, separate from how it is sent.

Every API action is a generator (an `Exchange`) that yields the HTTP calls it needs and
receives their replies, then returns its result. The sync and async clients only drive
these generators, so paging, "read, then act" steps and batch splitting are written once
for both. An error reply is thrown into the generator, which may catch it and carry on.

    def get_thing(thing_id: str) -> Exchange[Thing]:
        reply = yield from send(Call("GET", "/things/{thingID}", {"thingID": thing_id}))
        return decode(reply, Thing)
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

T = TypeVar("T")

JSONBody = Mapping[str, object]


@dataclass(frozen=True)
class Call:
    """One HTTP request, as the spec names it.

    `retry_safe` says whether repeating the request after an unknown outcome (a 5xx or a
    lost connection) is harmless; creating things is not.
    """

    method: str
    path_template: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Sequence[tuple[str, str]] = ()
    json: JSONBody | None = None
    retry_safe: bool = True

    @property
    def endpoint(self) -> str:
        """The endpoint as the spec names it, for messages: `GET /sandboxes/{sandboxID}`."""
        return f"{self.method} {self.path_template}"

    @property
    def path(self) -> str:
        """The concrete path with every parameter percent-encoded."""
        return self.path_template.format_map(
            {name: quote(value, safe="") for name, value in self.path_params.items()}
        )


@dataclass(frozen=True)
class Reply:
    """A 2xx answer to a `Call`. Error answers are raised, never replied."""

    call: Call
    status_code: int
    headers: Mapping[str, str]
    content: bytes


Exchange = Generator[Sequence[Call], Sequence[Reply], T]
"""An action: yields batches of calls (sent concurrently where the client can), gets replies."""


def send(call: Call) -> Generator[Sequence[Call], Sequence[Reply], Reply]:
    """Send one call and return its reply (use with `yield from`)."""
    replies = yield (call,)
    return replies[0]


def send_all(calls: Sequence[Call]) -> Generator[Sequence[Call], Sequence[Reply], list[Reply]]:
    """Send calls concurrently (on the async client) and return the replies in call order."""
    if not calls:
        return []
    replies = yield tuple(calls)
    return list(replies)
