"""Finding 7 and the first half of 9: a second local user reaching into boxes.

The attacker is another uid on the host (`run_as_attacker`). It may read whatever the
kernel shows every user (/proc/mounts, loop devices, cgroup trees) and talk to sandboxd's
ports on 127.0.0.1. It must learn no box id or path from that, get nothing from envd
without a box's token, and be unable to put a file into a box through the host's view of
the box's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox

from sandboxd.testing import RunningSandboxd
from tests.security.second_user import run_as_attacker

pytestmark = pytest.mark.usefixtures("sdk_env")

# What every user may read on a Linux host and that could name a box.
WORLD_READABLE_PLACES = """
import glob, os
texts = []
loops = glob.glob("/sys/block/loop*/loop/backing_file")
for path in ["/proc/mounts", "/proc/self/mountinfo"] + loops:
    try:
        texts.append(open(path).read())
    except OSError:
        pass
for root in glob.glob("/sys/fs/cgroup/*/") + glob.glob("/sys/fs/cgroup/*/*/"):
    try:
        texts.append(" ".join(os.listdir(root)))
    except OSError:
        pass
print("\\n".join(texts))
"""


@pytest.fixture
def plain_box(api: httpx.Client) -> Iterator[dict[str, str]]:
    """A box made with the v1 create and no `secure` (the case that was left open); the
    create answer as the API gave it."""
    answer = api.post("/sandboxes", json={"templateID": "small", "timeout": 120})
    answer.raise_for_status()
    created: dict[str, str] = answer.json()
    try:
        yield created
    finally:
        api.delete(f"/sandboxes/{created['sandboxID']}")


def _host_dir_of(sandbox: Sandbox) -> Path:
    """The host directory whose `home` is the box's /home/user, found by a marker file the
    box writes (as root, which may list sandboxd's runtime dir)."""
    marker = f"marker-{secrets.token_hex(8)}"
    sandbox.files.write(f"/home/user/{marker}", "x")
    for home in Path("/run/sandboxd").glob("*/*/home"):
        if (home / marker).exists():
            return home.parent
    raise AssertionError("no host directory holds the box's home")


def test_world_readable_files_name_no_box(plain_box: dict[str, str]) -> None:
    sandbox_id = plain_box["sandboxID"]

    seen = run_as_attacker(WORLD_READABLE_PLACES)

    assert seen.returncode == 0, seen.stderr
    assert "sandboxd" in seen.stdout or "/run" in seen.stdout  # it did read the mount table
    assert sandbox_id not in seen.stdout


def test_envd_refuses_a_box_made_without_secure_to_callers_without_its_token(
    sandboxd: RunningSandboxd, plain_box: dict[str, str]
) -> None:
    # The id is given to the attacker: even one who learns it gets nothing without the token.
    attack = f"""
import json, urllib.request, urllib.error
headers = {{"E2b-Sandbox-Id": {plain_box["sandboxID"]!r}, "Content-Type": "application/json",
           "Connect-Protocol-Version": "1"}}
answers = {{}}
for name, url, body in [
    ("rpc", {sandboxd.envd_url!r} + "/process.Process/List", b"{{}}"),
    ("files", {sandboxd.envd_url!r} + "/files?path=/etc/hostname", None),
]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answers[name] = answer.status
    except urllib.error.HTTPError as refused:
        answers[name] = refused.code
print(json.dumps(answers))
"""
    done = run_as_attacker(attack)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rpc": 401, "files": 401}


def test_the_sdk_still_reaches_a_box_made_without_secure(plain_box: dict[str, str]) -> None:
    # The create answer carries the token, so the official SDK sends it, unmodified.
    assert plain_box.get("envdAccessToken")
    sandbox = Sandbox.connect(plain_box["sandboxID"])

    async def run_async() -> str:
        box = await AsyncSandbox.connect(plain_box["sandboxID"])
        return (await box.commands.run("echo async")).stdout

    assert sandbox.commands.run("echo reached").stdout == "reached\n"
    assert asyncio.run(run_async()) == "async\n"


def test_another_user_cannot_plant_files_in_a_box(small_sandbox: Sandbox) -> None:
    box_dir = _host_dir_of(small_sandbox)
    planted = [box_dir / "tmp" / "planted", box_dir / "home" / "planted"]
    attack = f"""
import json
results = {{}}
for path in {[str(p) for p in planted]!r}:
    try:
        with open(path, "w") as out:
            out.write("from another user")
        results[path] = "written"
    except OSError as refused:
        results[path] = refused.__class__.__name__
print(json.dumps(results))
"""
    try:
        done = run_as_attacker(attack)

        assert done.returncode == 0, done.stderr
        assert "written" not in json.loads(done.stdout).values()
        assert not any(path.exists() for path in planted)
    finally:
        for path in planted:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
