"""A `multipart/form-data` body read part by part as it arrives (python-multipart's streaming
parser): nothing is spooled to host memory or disk, so an upload costs sandboxd one chunk
however large it is, and the box's own disk quota is what limits it.

`events(chunks, boundary)` yields, for each part, a `PartStart`, then its data as `bytes`
pieces (each at most one chunk of the request), then `PART_END`. `part_data(events)` yields
one part's data and stops after its end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:  # a typing-only name in python-multipart
    from python_multipart.multipart import MultipartCallbacks

# A part's headers name the file (a path of up to 4096 bytes) and little else; 16 KiB leaves
# room for that and bounds what a part that never ends its headers can make sandboxd hold.
MAX_PART_HEADER_BYTES = 16 << 10
# Parts in one upload. The answer lists every file written, so the count bounds its size;
# 10,000 is what Starlette's form parser allowed before (max_files).
MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartStart:
    """A part's headers: its form field name and, for a file, its filename (else None)."""

    name: str
    filename: str | None


class _PartEnd:
    pass


PART_END: Final = _PartEnd()
Event = PartStart | bytes | _PartEnd


class _Collector:
    """python-multipart's callbacks, turning one `write` into a list of events."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.parts = 0
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": lambda: self.events.append(PART_END),
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ValueError(f"the upload has more than {MAX_PARTS} parts")
        self._header_bytes, self._disposition = 0, b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(bytes(data[start:end]))

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow(self._header_name, data[start:end])

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow(self._header_value, data[start:end])

    def _grow(self, buffer: bytearray, piece: bytes) -> None:
        self._header_bytes += len(piece)
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise ValueError(f"a part's headers are over {MAX_PART_HEADER_BYTES} bytes")
        buffer += piece

    def _on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = _text(options.get(b"name", b""))
        filename = _text(options[b"filename"]) if b"filename" in options else None
        self.events.append(PartStart(name, filename))

    def _on_end(self) -> None:
        self.ended = True


def _text(raw: bytes) -> str:
    """UTF-8 as the SDK sends it; Latin-1 (never failing) for anything else, as Starlette."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def events(chunks: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[Event]:
    """The body's parts as events (see the module docstring); ValueError (python-multipart's
    errors are ValueErrors) when the body is not well-formed multipart or breaks a limit."""
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())
    async for chunk in chunks:
        if collector.ended:
            continue  # read to the end, so the connection stays usable; the epilogue is ignored
        parser.write(chunk)
        for event in collector.events:
            yield event
        collector.events.clear()
    parser.finalize()
    for event in collector.events:
        yield event
    if not collector.ended:
        raise ValueError("the multipart body ends before its closing boundary")


async def part_data(source: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The data of the part whose `PartStart` was just taken from `source`, up to its end."""
    async for event in source:
        if isinstance(event, _PartEnd):
            return
        if isinstance(event, bytes):
            yield event
        else:
            raise ValueError("a part starts inside another")
