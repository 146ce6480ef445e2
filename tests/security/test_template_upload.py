"""Attacks on template uploads: the signed link (no API key) must take only what it was
signed for, for as long as it was signed, and no more bytes than the limit; a hostile tar
(absolute paths, `..` members, a symlink to climb out) must land nothing outside its
destination in the box, and nothing on the host, where it is never extracted."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from e2b import Sandbox

from sandboxd.templates.files import ContextFiles
from sandboxd.templates.steps import COPY_SCRIPT
from sandboxd.testing import RunningSandboxd, api_client, running_sandboxd

HASH = "ab" * 32
OTHER_HASH = "cd" * 32
TIMEOUT_S = 60


def _template(api: httpx.Client, name: str) -> str:
    answer = api.post("/v3/templates", json={"name": name})
    assert answer.status_code == 202
    template_id: str = answer.json()["templateID"]
    return template_id


def _link(api: httpx.Client, template_id: str, files_hash: str = HASH) -> str:
    answer = api.get(f"/templates/{template_id}/files/{files_hash}")
    assert answer.status_code == 201  # E2B answers this GET with 201
    url: str = answer.json()["url"]
    return url


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_the_link_needs_no_key_but_asking_for_one_does(
    api: httpx.Client, sandboxd: RunningSandboxd
) -> None:
    template_id = _template(api, "up-key")
    link = _link(api, template_id)

    without_key = httpx.get(f"{sandboxd.api_url}/templates/{template_id}/files/{HASH}")
    uploaded = httpx.put(link, content=b"a tar")

    assert without_key.status_code == 401
    assert uploaded.status_code == 200
    assert api.get(f"/templates/{template_id}/files/{HASH}").json()["present"] is True


def test_a_forged_or_moved_signature_is_refused(
    api: httpx.Client, sandboxd: RunningSandboxd
) -> None:
    template_id = _template(api, "up-forged")
    link = _link(api, template_id, OTHER_HASH)
    forged = _with_query(link, signature="0" * 64)
    later = _with_query(link, expires=str(int(time.time()) + 10 * 86400))  # stretched
    moved = link.replace(OTHER_HASH, "ef" * 32)  # another hash, same signature

    answers = [httpx.put(url, content=b"x") for url in (forged, later, moved)]

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all(a.json()["message"] == "invalid upload signature" for a in answers)
    files = sandboxd.data_dir / "templates" / "files"
    assert not (files / f"{OTHER_HASH}.tar").exists() and not (files / f"{'ef' * 32}.tar").exists()


def test_an_expired_link_is_refused(api: httpx.Client, sandboxd: RunningSandboxd) -> None:
    template_id = _template(api, "up-expired")
    files = ContextFiles(sandboxd.data_dir / "templates" / "files", 1)  # sandboxd's own key
    expired = files.link(sandboxd.api_url, template_id, OTHER_HASH, time.time() - 2 * 3600)

    answer = httpx.put(expired, content=b"x")

    assert answer.status_code == 403 and answer.json()["message"] == "upload link has expired"


@pytest.fixture(scope="module")
def small_uploads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    data_dir = tmp_path_factory.mktemp("uploads")
    with running_sandboxd(data_dir, SANDBOXD_MAX_TEMPLATE_UPLOAD_MB="1") as server:
        yield server


def _chunks(total_bytes: int) -> Iterator[bytes]:
    chunk = b"\0" * 65536
    for _ in range(total_bytes // len(chunk)):
        yield chunk


def test_an_oversized_upload_is_cut_off(small_uploads: RunningSandboxd) -> None:
    with api_client(small_uploads) as api:
        template_id = _template(api, "up-big")
        link = _link(api, template_id)
        # No Content-Length (chunked): sandboxd must count as the bytes come.
        streamed = httpx.put(link, content=_chunks(8 * 2**20), timeout=TIMEOUT_S)
        declared = httpx.put(link, content=b"\0" * (2 * 2**20), timeout=TIMEOUT_S)
        present = api.get(f"/templates/{template_id}/files/{HASH}").json()["present"]

    assert streamed.status_code == 413 and declared.status_code == 413
    assert present is False
    files = small_uploads.data_dir / "templates" / "files"
    assert [p.name for p in files.iterdir() if p.name != "upload_key"] == []  # no partial left


def _hostile_tar(*, with_dotdot: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(name: str, data: bytes = b"pwned\n", **kind: object) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data) if not kind else 0
            for key, value in kind.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if not kind else None)

        add("ok.txt", b"fine\n")
        if with_dotdot:
            add("../escape-dotdot.txt")
            add("../../../../../../tmp/escape-deep.txt")
        add("/tmp/escape-abs.txt")
        add("/home/user/escape-home.txt")
        add("link", type=tarfile.SYMTYPE, linkname="/home/user/outside")
        add("link/escape-symlink.txt")
        add("uplink", type=tarfile.SYMTYPE, linkname="../../../../home/user/outside")
        add("uplink/escape-uplink.txt")
        add("abslink", type=tarfile.SYMTYPE, linkname="/home/user")
        add("abslink/escape-abslink.txt")
        add("dev-null-copy", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    return out.getvalue()


FIND_ESCAPES = "find / -xdev -name 'escape-*' 2>/dev/null; ls -A /home/user/outside 2>/dev/null"


@pytest.mark.parametrize("with_dotdot", [True, False], ids=["dotdot-members", "no-dotdot"])
def test_a_hostile_tar_extracts_nothing_outside_its_destination_in_the_box(
    sdk_env: None, with_dotdot: bool
) -> None:
    sandbox = Sandbox.create("base", timeout=TIMEOUT_S)
    try:
        sandbox.files.write("/tmp/context.tar", _hostile_tar(with_dotdot=with_dotdot))
        sandbox.files.write("/tmp/copy.sh", COPY_SCRIPT)
        copy = sandbox.commands.run(
            "bash /tmp/copy.sh /tmp/context.tar ok.txt /home/user/dest/ '' /home/user; echo exit=$?"
        )
        found = sandbox.commands.run(FIND_ESCAPES + "; true").stdout.split()
        listed = sandbox.commands.run("ls -A /home/user/dest 2>/dev/null; true").stdout.split()
    finally:
        sandbox.kill()

    # GNU tar in the box refuses `..` members, strips a leading `/`, makes placeholders
    # for symlinks that climb out, cannot mknod: it extracts the rest in its scratch
    # directory and fails, and the COPY fails saying so (tar's own lines go to the log).
    assert "exit=1" in copy.stdout and "could not be extracted" in copy.stderr
    assert "Removing leading `/'" in copy.stdout
    assert found == []
    assert listed == []


def test_a_hostile_tar_in_a_build_lands_nothing_on_the_host(
    api: httpx.Client, sandboxd: RunningSandboxd
) -> None:
    template_id = _template(api, "up-hostile")
    assert httpx.put(_link(api, template_id), content=_hostile_tar()).status_code == 200
    build_id = api.post("/v3/templates", json={"name": "up-hostile"}).json()["buildID"]
    steps = [
        {"type": "COPY", "args": ["ok.txt", "/home/user/dest/", "", ""], "filesHash": HASH},
        {"type": "RUN", "args": [f'test -z "$({FIND_ESCAPES})"']},
    ]

    started = api.post(
        f"/v2/templates/{template_id}/builds/{build_id}",
        json={"fromTemplate": "base", "steps": steps},
    )
    status = _wait_for_build(api, template_id, build_id)

    assert started.status_code == 202
    # GNU tar in the box refuses the `..` members and fails the COPY; either way nothing
    # may land outside the destination, in the box (above) or on the host (here).
    assert status["status"] in ("ready", "error")
    host_paths = [Path("/tmp/escape-abs.txt"), Path("/tmp/escape-deep.txt")]
    host_paths += list(sandboxd.data_dir.rglob("escape-*"))
    host_paths += list(sandboxd.data_dir.parent.glob("escape-*"))
    assert [p for p in host_paths if p.exists()] == []


def _wait_for_build(api: httpx.Client, template_id: str, build_id: str) -> dict[str, object]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status: dict[str, object] = api.get(
            f"/templates/{template_id}/builds/{build_id}/status"
        ).json()
        if status["status"] in ("ready", "error"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} did not finish in {TIMEOUT_S} s")
