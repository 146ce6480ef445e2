"""A build's layers: the build box's home directory, kept as a tar, and put back in a box.

Without a writable root filesystem for boxes (their /usr and /etc are the host's,
read-only), what a step can change that lasts is the sandbox user's home. A layer is that
home after the step, tarred INSIDE the box (so nothing of it is read on the host but the
bytes) and copied out through the agent, at most `max_bytes`. A sandbox of the template
gets it back at its start, extracted inside its box (startup.py); so does a build box that
resumes from a cached step.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from sandboxd.agent.client import AgentClient
from sandboxd.agent.messages import AgentError, Data
from sandboxd.private_files import FILE_MODE
from sandboxd.templates.boxexec import BASH, LineSink, LineSplitter, run_script

TAR_IN_BOX = "/tmp/.sandboxd-layer.tar"
READ_CHUNK_BYTES = 1 << 20
STREAM_CHUNK_BYTES = 1 << 19  # 0.7 MB as base64 per input request

# $HOME, not /home/user: a box of reduced isolation without bwrap has its home elsewhere.
# gzip -1: every byte crosses the agent's channel at each sandbox start, and a home of
# installed packages shrinks about 3x (a 50 MiB home: 1.4 s to start a sandbox as a plain
# tar, 0.8 s gzipped); -1 because the box pays for it at every step of a build.
_CAPTURE = 'tar -C "$HOME" --numeric-owner -I "gzip -1" -cf "$1" . && stat -c %s "$1"'
_RESTORE_CLEAN = 'find "$HOME" -mindepth 1 -delete && '
_RESTORE_FROM_STDIN = 'tar -xz -C "$HOME" --no-same-owner'


class LayerError(Exception):
    """A layer could not be made or put back; the message says why."""


async def capture_home(
    agent: AgentClient, destination: Path, max_bytes: int, timeout_s: float
) -> int:
    """Tar the box's home into `destination` (a new host file); its size in bytes."""
    output: list[str] = []

    def keep(stream: str, line: str) -> None:
        if len(output) < 20:
            output.append(line)

    end = await run_script(agent, _CAPTURE, [TAR_IN_BOX], timeout_s=timeout_s, on_line=keep)
    if end.exit_code != 0:
        raise LayerError("could not tar the home directory: " + " | ".join(output[-5:]))
    size = int(output[-1]) if output and output[-1].isdigit() else -1
    try:
        if not 0 <= size <= max_bytes:
            raise LayerError(
                f"the home directory is {size / 2**20:.1f} MiB as a tar, over the layer "
                f"limit of {max_bytes // 2**20} MiB (SANDBOXD_MAX_LAYER_MB)"
            )
        await _copy_out(agent, destination, max_bytes)
    finally:
        await run_script(agent, 'rm -f "$1"', [TAR_IN_BOX], timeout_s=timeout_s)
    return size


async def _copy_out(agent: AgentClient, destination: Path, max_bytes: int) -> None:
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in agent.read_file_chunks(TAR_IN_BOX, READ_CHUNK_BYTES):
                written += len(chunk)
                if written > max_bytes:  # the box may grow the file after its stat
                    raise LayerError("the layer grew past its limit while it was copied")
                out.write(chunk)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


async def restore_home(
    agent: AgentClient,
    layer_file: Path,
    *,
    clean: bool,
    timeout_s: float,
    on_line: LineSink | None = None,
) -> None:
    """Put a layer back as the box's home (emptied first when `clean`): the tar is fed to
    `tar -x` in the box through its stdin, a chunk at a time, never stored in the box."""
    script = (_RESTORE_CLEAN if clean else "") + _RESTORE_FROM_STDIN
    sink: LineSink = on_line or (lambda stream, line: None)
    splitters = {name: LineSplitter(name, sink) for name in ("stdout", "stderr", "pty")}
    handle = await agent.start_process(
        BASH, ["-c", script], stdin=True, timeout_s=timeout_s, tag="template layer"
    )

    async def read_output() -> None:
        async for event in handle:
            if isinstance(event, Data):
                splitters[event.stream].feed(event.data)

    # Read while feeding: a tar that writes much (errors) would otherwise block on its
    # output, stop reading its input, and leave send_input waiting until the timeout.
    reader = asyncio.create_task(read_output())
    try:
        try:
            async for chunk in _chunks_of(layer_file):
                await agent.send_input(handle.pid, chunk)
            await agent.close_stdin(handle.pid)
        except AgentError:  # tar ended early: its end (below) says how
            pass
        await asyncio.wait({reader}, timeout=timeout_s)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        handle.close()
    if handle.end is None or handle.end.exit_code != 0:
        status = "no end" if handle.end is None else handle.end.status
        raise LayerError(f"could not put the template's layer in the box ({status})")


async def _chunks_of(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(STREAM_CHUNK_BYTES):
            yield chunk
