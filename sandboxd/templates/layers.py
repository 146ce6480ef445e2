"""A build's layers: the build box's home directory, kept as a tar, and put back in a box.

Without a writable root filesystem for boxes (their /usr and /etc are the host's,
read-only), what a step can change that lasts is the sandbox user's home. A layer is that
home after the step, tarred INSIDE the box (so nothing of it is read on the host but the
bytes), streamed out of tar's stdout to a host file, at most `max_bytes`. A sandbox of the
template gets it back at its start, fed to tar's stdin inside its box (startup.py); so does
a build box that resumes from a cached step.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from sandboxd.agent.client import AgentClient
from sandboxd.agent.messages import AgentError, Data
from sandboxd.private_files import FILE_MODE
from sandboxd.templates.boxexec import BASH, LineSink, LineSplitter

TAR = "/usr/bin/tar"
STREAM_CHUNK_BYTES = 1 << 19  # 0.7 MB as base64 per input request

# $HOME, not /home/user: a box of reduced isolation without bwrap has its home elsewhere.
# gzip -1: every byte crosses the agent's channel at each sandbox start, and a home of
# installed packages shrinks about 3x (a 50 MiB home: 1.4 s to start a sandbox as a plain
# tar, 0.8 s gzipped); -1 because the box pays for it at every step of a build.
_CAPTURE_TO_STDOUT = 'tar -C "$HOME" --numeric-owner -I "gzip -1" -cf - .'
_RESTORE_CLEAN = 'find "$HOME" -mindepth 1 -delete && '
_RESTORE_FROM_STDIN = 'tar -xz -C "$HOME" --no-same-owner'


class LayerError(Exception):
    """A layer could not be made or put back; the message says why."""


async def capture_home(
    agent: AgentClient, destination: Path, max_bytes: int, timeout_s: float
) -> int:
    """Tar the box's home into `destination` (a new host file): tar writes it to its
    stdout, which is written to disk as it comes (nothing of it stored in the box, whose
    disk may be small), cut off past `max_bytes`. Its size in bytes."""
    errors: collections.deque[str] = collections.deque(maxlen=5)
    stderr = LineSplitter("stderr", lambda stream, line: errors.append(line))
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    written = 0
    handle = await agent.start_process(
        BASH, ["-c", _CAPTURE_TO_STDOUT], timeout_s=timeout_s, tag="template layer"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            async for event in handle:
                if not isinstance(event, Data):
                    continue
                if event.stream != "stdout":
                    stderr.feed(event.data)
                    continue
                written += len(event.data)
                if written > max_bytes:
                    await agent.send_signal(handle.pid, "SIGKILL")
                    raise LayerError(
                        f"the home directory is over the layer limit of {max_bytes // 2**20} "
                        "MiB as a compressed tar (SANDBOXD_MAX_LAYER_MB)"
                    )
                out.write(event.data)
        stderr.close()
        if handle.end is None or handle.end.exit_code != 0:
            raise LayerError("could not tar the home directory: " + " | ".join(errors))
        os.replace(partial, destination)
    finally:
        handle.close()
        partial.unlink(missing_ok=True)
    return written


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
    sink: LineSink = on_line or (lambda stream, line: None)
    splitters = {name: LineSplitter(name, sink) for name in ("stdout", "stderr", "pty")}
    if clean:
        command, args = BASH, ["-c", _RESTORE_CLEAN + _RESTORE_FROM_STDIN]
    else:  # tar itself, no shell: it starts in the home, the agent's default directory
        command, args = TAR, ["-xz", "--no-same-owner"]
    handle = await agent.start_process(
        command, args, stdin=True, timeout_s=timeout_s, tag="template layer"
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
