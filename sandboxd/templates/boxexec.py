"""Running a shell script in a box through its agent, its output read as bounded lines.

Everything a box prints is hostile: a line is cut at MAX_LINE_CHARS, and the caller's
`on_line` decides what to keep (build logs keep a bounded number, steps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sandboxd.agent.client import AgentClient
from sandboxd.agent.messages import Data, End

MAX_LINE_CHARS = 2000
BASH = "/bin/bash"

LineSink = Callable[[str, str], None]  # (stream, line)


class LineSplitter:
    """Bytes in, whole lines out; a line longer than MAX_LINE_CHARS is cut (marked)."""

    def __init__(self, stream: str, sink: LineSink) -> None:
        self._stream = stream
        self._sink = sink
        self._pending = b""
        self._cut = False

    def feed(self, data: bytes) -> None:
        *lines, rest = (self._pending + data).split(b"\n")
        for line in lines:
            self._emit(line)
            self._cut = False
        if len(rest) > MAX_LINE_CHARS * 4:  # bytes: a UTF-8 character is at most 4
            if not self._cut:
                self._emit(rest)
            self._cut = True
            rest = b""
        self._pending = rest if not self._cut else b""

    def close(self) -> None:
        if self._pending and not self._cut:
            self._emit(self._pending)
        self._pending = b""

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [line cut]"
        self._sink(self._stream, text)


async def run_script(
    agent: AgentClient,
    script: str,
    args: Sequence[str] = (),
    *,
    envs: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float | None = None,
    on_line: LineSink | None = None,
) -> End:
    """Run `bash -c script bash args...` in the box; feed its output to `on_line`."""
    sink: LineSink = on_line or (lambda stream, line: None)
    splitters = {name: LineSplitter(name, sink) for name in ("stdout", "stderr", "pty")}
    handle = await agent.start_process(
        BASH, ["-c", script, "bash", *args], envs=envs, cwd=cwd, timeout_s=timeout_s
    )
    async for event in handle:
        if isinstance(event, Data):
            splitters[event.stream].feed(event.data)
    for splitter in splitters.values():
        splitter.close()
    assert handle.end is not None
    return handle.end
