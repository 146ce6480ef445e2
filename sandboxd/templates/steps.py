"""A build's steps run in its box, through the box's agent, as the sandbox user.

RUN is `bash -c`, with the environment of the ENV steps so far and the WORKDIR as its
directory; COPY extracts the uploaded tar INSIDE the box, in a scratch directory, and
copies what the step names to its destination (so a hostile tar's absolute paths, `..`
members, symlinks or devices meet the box's walls, never the host's). A build keeps only the
sandbox user's home (layers.py): a step that asks for root, whose work would land outside
it, fails the build and says so.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sandboxd.agent.client import AgentClient
from sandboxd.templates.boxexec import run_script
from sandboxd.templates.files import ContextFiles, is_files_hash
from sandboxd.templates.records import StepState

# What the step types' wire names are (the SDK's InstructionType).
STEP_TYPES = ("COPY", "ENV", "RUN", "WORKDIR", "USER")
BOX_USER = "user"
# Output lines of one step written to the build log as they come; past it only the last
# TAIL_LINES are kept, written when the step ends after a line that counts the dropped.
MAX_LIVE_LINES_PER_STEP = 1000
TAIL_LINES = 200
COPY_ARCHIVE_IN_BOX = "/tmp/.sandboxd-context.tar"
NO_ROOT = (
    "needs sudo/root in the box, which a build does not have: a build keeps only the "
    "sandbox user's home (boxes have no writable root filesystem yet, so what a root step "
    "installs would be lost); run it as the default user (for example "
    "pip_install(..., g=False), or a user-level install)"
)

LogSink = Callable[[str, str], None]  # (level, message)
# The box's Python is Debian's, which refuses `pip install --user` (PEP 668) unless told:
# a user-level install only writes the home, which is what a layer keeps, so steps allow it
# (the SDK's `pip_install(..., g=False)` works as on E2B's images). A step's ENV wins.
BUILD_ENV = {"PIP_BREAK_SYSTEM_PACKAGES": "1"}


class StepFailed(Exception):
    """A step failed; the message says how (the build's reason)."""


COPY_SCRIPT = r"""
archive="$1"; src="$2"; dest="$3"; mode="$4"; workdir="$5"
case "$dest" in /*) ;; *) dest="${workdir:-$HOME}/$dest" ;; esac
scratch=$(mktemp -d /tmp/.sandboxd-copy.XXXXXX) || exit 1
trap 'rm -rf "$scratch" "$archive"' EXIT
if ! tar -xf "$archive" -C "$scratch" --no-same-owner 2>&1; then
    echo "COPY: the uploaded archive could not be extracted" >&2; exit 1
fi
cd "$scratch" || exit 1
shopt -s nullglob dotglob
if [ -e "$src" ] || [ -L "$src" ]; then matches=("$src"); else matches=($src); fi
if [ ${#matches[@]} -eq 0 ]; then echo "COPY: nothing in the upload matches $src" >&2; exit 1; fi
targets=()
if [ ${#matches[@]} -eq 1 ] && [ -d "${matches[0]}" ] && [ ! -L "${matches[0]}" ]; then
    mkdir -p -- "$dest" && cp -a -- "${matches[0]}/." "$dest/" || exit 1
    targets=("$dest")
elif [ ${#matches[@]} -gt 1 ] || [ -d "$dest" ] || [ "${dest%/}" != "$dest" ]; then
    mkdir -p -- "$dest" && cp -a -- "${matches[@]}" "$dest/" || exit 1
    for m in "${matches[@]}"; do targets+=("${dest%/}/$(basename -- "$m")"); done
else
    mkdir -p -- "$(dirname -- "$dest")" && cp -a -- "${matches[0]}" "$dest" || exit 1
    targets=("$dest")
fi
if [ -n "$mode" ]; then chmod -R -- "$mode" "${targets[@]}" || exit 1; fi
"""


class StepOutput:
    """A step's output lines into the build log, bounded (see MAX_LIVE_LINES_PER_STEP)."""

    def __init__(self, log: LogSink) -> None:
        self._log = log
        self.written = 0
        self.dropped = 0
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def line(self, stream: str, text: str) -> None:
        if self.written < MAX_LIVE_LINES_PER_STEP:
            self.written += 1
            self._log("info", text)
            return
        if len(self._tail) == TAIL_LINES:
            self.dropped += 1
        self._tail.append(text)

    def finish(self) -> None:
        if self.dropped:
            self._log(
                "warn",
                f"[{self.dropped} lines of this step's output dropped: the build log keeps "
                f"the first {MAX_LIVE_LINES_PER_STEP} and the last {TAIL_LINES}]",
            )
        for text in self._tail:
            self._log("info", text)
        self._tail.clear()


def describe(step: dict[str, Any]) -> str:
    """A step as one line for the log, e.g. `RUN pip install x` (bounded)."""
    text = f"{step['type']} {' '.join(step['args'])}".strip()
    return text if len(text) <= 300 else text[:300] + "..."


def check_step(step: object, index: int) -> dict[str, Any]:
    """A TemplateStep of the start request, checked (400 text as ValueError)."""
    if not isinstance(step, dict):
        raise ValueError(f"step {index} must be an object")
    kind = step.get("type")
    args = step.get("args", [])
    if kind not in STEP_TYPES:
        raise ValueError(f"step {index} has unknown type {kind!r}; known: {', '.join(STEP_TYPES)}")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError(f"step {index}: 'args' must be a list of strings")
    if any("\0" in a for a in args) or sum(len(a) for a in args) > 64 * 1024:
        raise ValueError(f"step {index}: 'args' hold a NUL byte or are over 64 KiB")
    files_hash = step.get("filesHash")
    if kind == "COPY":
        if len(args) < 2 or not args[0] or not args[1]:
            raise ValueError(f"step {index}: COPY needs a source and a destination")
        if not isinstance(files_hash, str) or not is_files_hash(files_hash):
            raise ValueError(f"step {index}: COPY needs 'filesHash' (64 hex digits)")
    if kind in ("RUN", "WORKDIR", "USER") and (not args or not args[0]):
        raise ValueError(f"step {index}: {kind} needs an argument")
    if kind == "ENV" and len(args) % 2:
        raise ValueError(f"step {index}: ENV needs name/value pairs")
    force = step.get("force", False)
    return {
        "type": kind,
        "args": list(args),
        "filesHash": files_hash if kind == "COPY" else None,
        "force": force is True,
    }


async def run_step(
    agent: AgentClient,
    step: dict[str, Any],
    state: StepState,
    files: ContextFiles,
    log: LogSink,
    timeout_s: float,
) -> StepState:
    """Run one step in the box; the state after it. StepFailed when it fails."""
    kind, args = step["type"], step["args"]
    if kind == "ENV":
        pairs = dict(zip(args[0::2], args[1::2], strict=True))
        if any(not name or "=" in name for name in pairs):
            raise StepFailed("ENV: a variable name is empty or holds '='")
        return replace(state, envs={**state.envs, **pairs})
    if kind == "USER":
        _check_user(args[0], "USER")
        return replace(state, user=BOX_USER)
    output = StepOutput(log)
    try:
        if kind == "WORKDIR":
            # Made and resolved in the box (a relative one is under the current WORKDIR).
            printed: list[str] = []
            resolve = StepOutput(lambda level, text: printed.append(text))
            script = 'mkdir -p "$1" && cd "$1" && pwd'
            await _must_succeed(agent, script, [args[0]], state, resolve, timeout_s)
            if not printed or not printed[-1].startswith("/"):
                raise StepFailed(f"WORKDIR {args[0]!r}: the box did not say where it is")
            return replace(state, workdir=printed[-1])
        if kind == "RUN":
            _check_user(args[1] if len(args) > 1 and args[1] else state.user, "RUN")
            await _must_succeed(agent, args[0], [], state, output, timeout_s)
            return state
        # COPY
        owner = args[2] if len(args) > 2 else ""
        if owner:
            _check_user(owner.split(":", 1)[0], "COPY")
        archive = files.path(step["filesHash"])
        if not archive.is_file():
            raise StepFailed(f"COPY: the files of {args[0]!r} were never uploaded")
        with open(archive, "rb") as source:
            await agent.write_file(COPY_ARCHIVE_IN_BOX, _read_chunks(source))
        mode = args[3] if len(args) > 3 else ""
        copy_args = [COPY_ARCHIVE_IN_BOX, args[0], args[1], mode, state.workdir]
        await _must_succeed(agent, COPY_SCRIPT, copy_args, state, output, timeout_s)
        return state
    finally:
        output.finish()


def _check_user(user: str, kind: str) -> None:
    if user in ("root", "0"):
        raise StepFailed(f"{kind} as root {NO_ROOT}")
    if user not in (BOX_USER, "1000"):
        raise StepFailed(f"{kind}: the box has only the user '{BOX_USER}', not {user!r}")


async def _must_succeed(
    agent: AgentClient,
    script: str,
    args: list[str],
    state: StepState,
    output: StepOutput,
    timeout_s: float,
) -> None:
    end = await run_script(
        agent,
        script,
        args,
        envs={**BUILD_ENV, **state.envs},
        cwd=state.workdir or None,
        timeout_s=timeout_s,
        on_line=output.line,
    )
    if end.exit_code != 0:
        raise StepFailed(f"the command failed: {end.status}")


async def _read_chunks(source: Any) -> Any:
    while chunk := source.read(1 << 20):
        yield chunk
