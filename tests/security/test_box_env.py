"""Finding 8: a box's env vars (often API keys) were on bwrap's command line as
`--setenv NAME VALUE`, and every host user can read every process's command line
(`ps`, /proc/<pid>/cmdline). They must reach the box some other way."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from e2b import Sandbox


def _cmdlines_holding(needle: bytes) -> list[str]:
    """`pid: argv` of every host process whose command line holds `needle`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:  # ended meanwhile
            continue
        if needle in argv:
            shown = argv.replace(b"\0", b" ")[:200]
            found.append(f"{cmdline.parent.name}: {shown!r}")
    return found


@pytest.mark.usefixtures("sdk_env")
def test_env_vars_reach_the_box_but_no_host_command_line() -> None:
    secret = f"sk-test-{secrets.token_hex(12)}"
    sandbox = Sandbox.create(template="small", timeout=60, envs={"BOX_SECRET": secret})
    try:
        inside = sandbox.commands.run('printf %s "$BOX_SECRET"').stdout
        on_host = _cmdlines_holding(secret.encode())
    finally:
        sandbox.kill()

    assert inside == secret
    assert on_host == []
