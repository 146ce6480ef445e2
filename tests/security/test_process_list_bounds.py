"""Box code controls what the agent's process list holds (commands, args, envs). Many
processes with big environments made one answer line past the channel's bound, which
sandboxd takes as a protocol violation and kills the box: a self-inflicted end that box
code controls, and a big host allocation. The list is now bounded per entry and in total,
so listing them through the official SDK succeeds and the box lives on."""

from __future__ import annotations

from e2b import Sandbox

from sandboxd.agent.agent import CUT_MARKER, LIST_PROCESS_FIELD_MAX_CHARS
from sandboxd.agent.channel import MAX_LINE_BYTES

PROCESS_COUNT = 50
ENV_VARS_PER_PROCESS = 4
# 4 x 50 KiB = 200 KiB per process (one env var stays under the kernel's 128 KiB a string),
# 10 MB for all: past the channel's line bound, yet bounded.
ENV_VALUE_CHARS = 50 << 10
TIMEOUT_S = 30


def test_listing_many_processes_with_big_envs_succeeds(small_sandbox: Sandbox) -> None:
    assert PROCESS_COUNT * ENV_VARS_PER_PROCESS * ENV_VALUE_CHARS > MAX_LINE_BYTES
    envs = {f"BIG_{n}": "x" * ENV_VALUE_CHARS for n in range(ENV_VARS_PER_PROCESS)}
    for _ in range(PROCESS_COUNT):
        small_sandbox.commands.run("sleep 600", envs=envs, background=True, timeout=0)

    listed = small_sandbox.commands.list(request_timeout=TIMEOUT_S)

    sleepers = [p for p in listed if "sleep 600" in " ".join([p.cmd, *p.args])]
    assert len(sleepers) == PROCESS_COUNT
    big = sleepers[0].envs["BIG_0"]
    assert big.endswith(CUT_MARKER) and len(big) <= LIST_PROCESS_FIELD_MAX_CHARS + len(CUT_MARKER)
    alive = small_sandbox.commands.run("echo alive", timeout=TIMEOUT_S)
    assert alive.stdout.strip() == "alive"
