"""Split a byte stream into lines of bounded length, in one pass over each byte."""

from __future__ import annotations

from collections.abc import Iterator

from sandboxd.agent.messages import ProtocolViolation


class LineSplitter:
    """Feed it chunks as they come; it yields complete lines (without the newline).

    Only the unfinished tail of the stream is kept, in pieces, and each byte is searched
    for a newline once: the work is linear in what is read, whatever the chunking. A line
    longer than `max_line_bytes` raises ProtocolViolation as soon as it is that long, so
    it never holds more than `max_line_bytes` plus one chunk.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._pieces: list[bytes] = []
        self._pending_bytes = 0

    def split(self, chunk: bytes) -> Iterator[bytes]:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            line = chunk[start:end]
            if self._pieces:
                line = b"".join([*self._pieces, line])
                self._pieces.clear()
                self._pending_bytes = 0
            self._check(len(line))
            yield line
            start = end + 1
        if start < len(chunk):
            self._pending_bytes += len(chunk) - start
            self._check(self._pending_bytes)
            self._pieces.append(chunk[start:])

    def _check(self, length_bytes: int) -> None:
        if length_bytes > self.max_line_bytes:
            raise ProtocolViolation(f"a line longer than {self.max_line_bytes} bytes")
