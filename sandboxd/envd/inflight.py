"""How many envd requests one sandbox may have in flight at once.

Each request is bounded on its own (message size, deadline), but a client could open
thousands at once for one box. So every box has two counts: short calls (unary RPCs, file
transfers, listings) and long-lived streams (a process's output, its input). They are
counted apart so a box's many running commands never take the slots its short calls need.
Past a count, envd answers 429 (`resource_exhausted`), which the official SDK raises as
RateLimitException, as it does for E2B's own rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Kind = Literal["call", "stream"]

# Short calls one box may have in flight. Each may make sandboxd hold one request message
# (up to connect.MAX_MESSAGE_BYTES, 2 MiB), so 32 bound that to 64 MiB per box, while a
# client running a few dozen file operations in parallel never sees a refusal.
MAX_CALLS_PER_BOX = 32
# Long-lived streams one box may have open (process Start/Connect, StreamInput). A stream
# holds little in sandboxd (the agent's output window bounds its data), so this is higher:
# it is the number of commands a client can follow at once.
MAX_STREAMS_PER_BOX = 128

# The process.Process methods whose requests or responses stay open while a process runs.
STREAMING_METHODS = frozenset({"Start", "Connect", "StreamInput"})
# filesystem.Filesystem's stream stays open while the client watches a directory.
FILESYSTEM_STREAMING_METHODS = frozenset({"WatchDir"})


def kind_of(service: str, method: str) -> Kind:
    """Whether an RPC is a long-lived stream or a short call."""
    if service == "process.Process" and method in STREAMING_METHODS:
        return "stream"
    if service == "filesystem.Filesystem" and method in FILESYSTEM_STREAMING_METHODS:
        return "stream"
    return "call"


@dataclass
class InFlightLimits:
    """Per box and kind, the requests being served; `take` refuses past the maximum."""

    max_calls: int = MAX_CALLS_PER_BOX
    max_streams: int = MAX_STREAMS_PER_BOX
    _counts: dict[tuple[str, Kind], int] = field(default_factory=dict)

    def maximum(self, kind: Kind) -> int:
        """The most requests of `kind` one box may have in flight."""
        return self.max_calls if kind == "call" else self.max_streams

    def take(self, sandbox_id: str, kind: Kind) -> Slot | None:
        """A slot to hold while the request is served, or None when the box is at its limit."""
        key = (sandbox_id, kind)
        count = self._counts.get(key, 0)
        if count >= self.maximum(kind):
            return None
        self._counts[key] = count + 1
        return Slot(self, key)

    def in_flight(self, sandbox_id: str, kind: Kind) -> int:
        """How many requests of `kind` the box has in flight now."""
        return self._counts.get((sandbox_id, kind), 0)

    def _release(self, key: tuple[str, Kind]) -> None:
        count = self._counts.get(key, 0) - 1
        if count > 0:
            self._counts[key] = count
        else:  # a box with nothing in flight leaves no entry behind
            self._counts.pop(key, None)

    def refusal(self, kind: Kind) -> str:
        """The message of a 429 for `kind`."""
        what = "short calls" if kind == "call" else "open process or watch streams"
        return (
            f"too many requests in flight for this sandbox: at most {self.maximum(kind)} "
            f"{what} at once; wait for some to finish"
        )


@dataclass
class Slot:
    """One request's place in its box's count; `release` is safe to call more than once."""

    limits: InFlightLimits
    key: tuple[str, Kind]
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limits._release(self.key)


class HeldResponse(Response):
    """Sends `response` as is, then lets go of `slot`: a streamed body (a process's output, a
    download) keeps its slot until it has been sent, or the client has gone."""

    def __init__(self, response: Response, slot: Slot) -> None:
        # Not Response.__init__: this wraps a finished response instead of rendering one.
        self.response = response
        self.slot = slot
        self.status_code = response.status_code
        self.raw_headers = response.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        finally:
            self.slot.release()
