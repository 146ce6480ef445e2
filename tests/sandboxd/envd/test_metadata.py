"""File metadata through the official SDK: `files.write(..., metadata=...)` keeps it as
user.e2b.* extended attributes, the upload's answer, Stat and ListDir return it, and
attributes set from inside the box are read too (within envd's bounds)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2b import AsyncSandbox, Sandbox
from e2b.exceptions import InvalidArgumentException

from sandboxd.agent.agent import METADATA_MAX_BYTES
from sandboxd.testing import RunningSandboxd, running_sandboxd
from tests.sandboxd.envd.conftest import TIMEOUT_S

# Box uids of this module's reduced sandboxd: never those of another test's.
UID_BASE = 470_000 + (os.getpid() % 500) * 100


def test_write_keeps_metadata_as_user_e2b_attributes(sandbox: Sandbox, home: Path) -> None:
    written = sandbox.files.write("doc.txt", "text", metadata={"Owner": "ana", "stage": "draft"})

    assert written.metadata == {"owner": "ana", "stage": "draft"}  # keys lowercased
    assert os.getxattr(home / "doc.txt", "user.e2b.owner") == b"ana"
    assert sandbox.files.get_info("doc.txt").metadata == {"owner": "ana", "stage": "draft"}
    [listed] = [e for e in sandbox.files.list(".") if e.name == "doc.txt"]
    assert listed.metadata == {"owner": "ana", "stage": "draft"}


def test_each_upload_replaces_the_metadata(sandbox: Sandbox, home: Path) -> None:
    sandbox.files.write("f.txt", "1", metadata={"a": "1", "b": "2"})
    sandbox.files.write("f.txt", "2", metadata={"b": "3"})
    assert sandbox.files.get_info("f.txt").metadata == {"b": "3"}

    cleared = sandbox.files.write("f.txt", "3")

    assert cleared.metadata is None
    assert sandbox.files.get_info("f.txt").metadata is None
    assert not [n for n in os.listxattr(home / "f.txt") if n.startswith("user.e2b.")]


def test_several_files_get_the_same_metadata(sandbox: Sandbox) -> None:
    written = sandbox.files.write_files(
        [{"path": "m/one", "data": "1"}, {"path": "m/two", "data": "2"}], metadata={"k": "v"}
    )

    assert [w.metadata for w in written] == [{"k": "v"}, {"k": "v"}]


def test_attributes_set_in_the_box_are_read_within_bounds(sandbox: Sandbox) -> None:
    sandbox.files.write("boxed.txt", "x")
    script = (
        "import os; p = 'boxed.txt'; "
        "os.setxattr(p, 'user.e2b.from-box', b'yes'); "
        "os.setxattr(p, 'user.e2b.binary', bytes(range(256))); "  # not printable: left out
        "os.setxattr(p, 'user.other', b'not ours')"
    )
    ran = sandbox.commands.run(f'python3 -c "{script}"')

    assert ran.exit_code == 0
    assert sandbox.files.get_info("boxed.txt").metadata == {"from-box": "yes"}


def test_metadata_past_the_bounds_is_refused(sandbox: Sandbox, home: Path) -> None:
    with pytest.raises(InvalidArgumentException, match="metadata"):
        sandbox.files.write("big.txt", "x", metadata={"k": "v" * METADATA_MAX_BYTES})
    with pytest.raises(InvalidArgumentException):  # the SDK itself checks characters
        sandbox.files.write("bad.txt", "x", metadata={"k": "tab\there"})

    assert not (home / "big.txt").exists()


def test_a_raw_upload_with_a_non_ascii_value_is_400(http: httpx.Client, home: Path) -> None:
    answer = http.post(
        "/files",
        params={"path": "raw.txt"},
        content=b"x",
        headers=[(b"content-type", b"application/octet-stream"), (b"x-metadata-k", b"\xe9")],
    )

    assert answer.status_code == 400 and "metadata" in answer.json()["message"]
    assert not (home / "raw.txt").exists()


def test_the_async_sdk_keeps_metadata_too(sandbox: Sandbox) -> None:
    async def scenario() -> tuple[dict[str, str] | None, dict[str, str] | None]:
        box = AsyncSandbox(
            sandbox_id=sandbox.sandbox_id,
            sandbox_domain=None,
            envd_version=sandbox._envd_version,
            envd_access_token=sandbox._envd_access_token,
            traffic_access_token=None,
            connection_config=sandbox.connection_config,
        )
        async with asyncio.timeout(TIMEOUT_S):
            written = await box.files.write("async.txt", "a", metadata={"via": "async"})
            return written.metadata, (await box.files.get_info("async.txt")).metadata

    assert asyncio.run(scenario()) == ({"via": "async"}, {"via": "async"})


@pytest.fixture(scope="module")
def reduced_sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    """sandboxd forced to reduced isolation: the box's disk is tmpfs, not ext4."""
    with running_sandboxd(
        tmp_path_factory.mktemp("reduced"),
        SANDBOXD_ISOLATION="reduced",
        SANDBOXD_HOST_UID_BASE=str(UID_BASE),
        SANDBOXD_PORTS_PORT="0",  # beside the module's other sandboxd
    ) as server:
        yield server


def real_box_keeps_metadata(box: Sandbox) -> None:
    """On a real box's disk: the SDK's metadata, and an attribute set by box code."""
    for directory in ("/home/user", "/tmp"):
        written = box.files.write(f"{directory}/m.txt", "x", metadata={"kind": "real"})
        script = f"import os; os.setxattr('{directory}/m.txt', 'user.e2b.by', b'box')"
        assert box.commands.run(f'python3 -c "{script}"').exit_code == 0

        assert written.metadata == {"kind": "real"}
        assert box.files.get_info(f"{directory}/m.txt").metadata == {"by": "box", "kind": "real"}


def test_a_full_isolation_box_keeps_metadata_on_its_ext4_disk(small_sandbox: Sandbox) -> None:
    real_box_keeps_metadata(small_sandbox)


def test_a_reduced_isolation_box_keeps_metadata_on_its_tmpfs_disk(
    reduced_sandboxd: RunningSandboxd,
) -> None:
    # tmpfs keeps user.* attributes from Linux 6.6; older kernels refuse them (the upload
    # then fails with a clear 400, see docs/E2B-API.md).
    if tuple(int(p) for p in os.uname().release.split(".")[:2]) < (6, 6):
        pytest.skip("tmpfs keeps user extended attributes from Linux 6.6")
    box = Sandbox.create(
        timeout=60, api_key=reduced_sandboxd.api_key, api_url=reduced_sandboxd.api_url,
        sandbox_url=reduced_sandboxd.envd_url,
    )  # fmt: skip
    try:
        real_box_keeps_metadata(box)
    finally:
        box.kill()
