"""`update_network` (PUT /sandboxes/{id}/network) through the official SDK, sync and async:
the new rules replace the old ones in a live box. Traffic goes only to PyPI."""

from __future__ import annotations

import asyncio
import os

import pytest
from e2b import AsyncSandbox, Sandbox
from e2b.sandbox.network import ALL_TRAFFIC

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="full isolation needs root")
PIP_TIMEOUT_S = 120
# A small wheel from PyPI; exit code 0 only if it came through.
PIP_DOWNLOAD = "python3 -m pip download six --no-deps --no-cache-dir -q -d /tmp/dl --retries 0"
PIP_OR_BLOCKED = f"{PIP_DOWNLOAD} >/dev/null 2>&1 && echo through || echo blocked"


def test_rules_change_in_a_live_box(sdk_env: None) -> None:
    box = Sandbox.create(template="base", timeout=180, allow_internet_access=False)
    try:
        assert box.commands.run(PIP_OR_BLOCKED, timeout=PIP_TIMEOUT_S).stdout == "blocked\n"
        box.update_network({})  # every rule cleared: the internet opens
        assert box.commands.run(PIP_DOWNLOAD, timeout=PIP_TIMEOUT_S).exit_code == 0
        box.update_network({"deny_out": [ALL_TRAFFIC]})
        assert box.commands.run(PIP_OR_BLOCKED, timeout=PIP_TIMEOUT_S).stdout == "blocked\n"
    finally:
        box.kill()


def test_rules_change_async(sdk_env: None) -> None:
    async def scenario() -> tuple[str, int]:
        box = await AsyncSandbox.create(template="base", timeout=180)
        try:
            await box.update_network({"deny_out": [ALL_TRAFFIC]})
            closed = await box.commands.run(PIP_OR_BLOCKED, timeout=PIP_TIMEOUT_S)
            await box.update_network({})
            opened = await box.commands.run(PIP_DOWNLOAD, timeout=PIP_TIMEOUT_S)
            return closed.stdout, opened.exit_code
        finally:
            await box.kill()

    assert asyncio.run(scenario()) == ("blocked\n", 0)


def test_domain_rules_are_refused(sdk_env: None) -> None:
    box = Sandbox.create(template="base", timeout=60)
    try:
        with pytest.raises(Exception, match="domain name"):
            box.update_network({"allow_out": ["example.com"]})
    finally:
        box.kill()
