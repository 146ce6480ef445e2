"""Finding 4: envd's file API must cost sandboxd bounded memory and no host disk, whatever a
request holds. Each attack goes through a real sandboxd to a real box, on 127.0.0.1:

- a gzip bomb (about 1 MiB inflating to 1 GiB) uploaded as one file;
- a multipart upload bigger than the box's disk;
- a listing of a deep, wide tree with a huge depth;
- Connect request bodies far over any sane message size.

sandboxd's memory is watched from outside (psutil, sampled every few milliseconds while the
request runs), so what is measured is the peak, not what is left after.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from e2b import Sandbox
from e2b.exceptions import InvalidArgumentException

from sandboxd.testing import RunningSandboxd, running_sandboxd

MIB = 1 << 20
# What one request may add to sandboxd's peak RSS. The fixed code holds one 256 KiB chunk and
# its copies on the agent channel (measured: 4-6 MiB at peak); before the fix the gzip bomb
# alone added 328 MB and the multipart upload spooled 95 MB to host temp.
RSS_GROWTH_BOUND_BYTES = 16 * MIB
BOMB_INFLATED_BYTES = 1 << 30  # 1 GiB of zeros: about 1 MiB once gzip'd
SMALL_DISK_BYTES = 64 * MIB  # the `small` template's disk
MULTIPART_UPLOAD_BYTES = 96 * MIB  # more than that disk holds
CONNECT_PAD_BYTES = 16 * MIB  # well past envd's request size limit
REQUEST_TIMEOUT_S = 120.0
RSS_SAMPLE_PERIOD_S = 0.005


@pytest.fixture(scope="module")
def host_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandboxd-tmp")


@pytest.fixture(scope="module")
def sandboxd(
    tmp_path_factory: pytest.TempPathFactory, host_temp_dir: Path
) -> Iterator[RunningSandboxd]:
    """sandboxd with a temp dir of its own, so a spooled upload can be seen (TMPDIR)."""
    data_dir = tmp_path_factory.mktemp("sandboxd")
    with running_sandboxd(
        data_dir,
        SANDBOXD_SAMPLE_INTERVAL_S="1",
        SANDBOXD_MAX_SANDBOXES="8",
        TMPDIR=str(host_temp_dir),
    ) as server:
        yield server


@pytest.fixture
def base_sandbox(sdk_env: None) -> Iterator[Sandbox]:
    """A `base` sandbox (1 GiB disk, enough inodes for a wide tree) for one test."""
    sandbox = Sandbox.create(template="base", timeout=120)
    yield sandbox
    with contextlib.suppress(Exception):  # already gone
        sandbox.kill()


class PeakRss:
    """Samples a process's RSS in a thread while the `with` block runs."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.before_bytes = 0
        self.peak_bytes = 0

    def __enter__(self) -> PeakRss:
        self.before_bytes = self.peak_bytes = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_PERIOD_S):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    @property
    def growth_bytes(self) -> int:
        return self.peak_bytes - self.before_bytes


def envd_client(sandbox: Sandbox) -> httpx.Client:
    """Raw HTTP to the sandbox's envd, with the headers the SDK would send."""
    headers = dict(sandbox.connection_config.sandbox_headers)
    return httpx.Client(base_url=sandbox.envd_api_url, headers=headers, timeout=REQUEST_TIMEOUT_S)


def gzip_bomb(inflated_bytes: int) -> bytes:
    """`inflated_bytes` zeros, gzip'd piece by piece: never more than 1 MiB of input held."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(inflated_bytes // MIB)]
    parts.append(compressor.flush())
    return b"".join(parts)


def spooled_bytes(pid: int, directory: Path) -> int:
    """The bytes of the files under `directory` that process `pid` holds open (named or not:
    an O_TMPFILE shows as `<directory>/#<inode> (deleted)`)."""
    total = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(fd_dir):
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd_dir / fd).startswith(str(directory) + "/"):
                total += os.stat(fd_dir / fd).st_size
    return total


def warm_up(client: httpx.Client) -> None:
    """One small upload first, so a lazily built route or import is not counted."""
    answer = client.post("/files", params={"path": "/tmp/warm"}, content=b"warm" * 1024)
    assert answer.status_code == 200, answer.text


def test_a_gzip_bomb_costs_sandboxd_no_more_than_a_chunk(
    sandboxd: RunningSandboxd, small_sandbox: Sandbox
) -> None:
    bomb = gzip_bomb(BOMB_INFLATED_BYTES)
    assert len(bomb) < 2 * MIB
    with envd_client(small_sandbox) as client:
        warm_up(client)
        with PeakRss(sandboxd.process.pid) as rss:
            answer = client.post(
                "/files",
                params={"path": "/home/user/bomb"},
                content=bomb,
                headers={"content-type": "application/octet-stream", "content-encoding": "gzip"},
            )

    assert answer.status_code in (400, 413, 507), answer.text
    assert set(answer.json()) == {"code", "message"}
    assert rss.growth_bytes < RSS_GROWTH_BOUND_BYTES, f"sandboxd grew {rss.growth_bytes} bytes"
    # Whatever reached the box stayed within its disk.
    size = small_sandbox.commands.run("stat -c %s /home/user/bomb 2>/dev/null || echo 0")
    assert int(size.stdout.strip()) <= SMALL_DISK_BYTES


def test_a_multipart_upload_bigger_than_the_box_never_lands_in_host_temp(
    sandboxd: RunningSandboxd, small_sandbox: Sandbox, host_temp_dir: Path
) -> None:
    pid = sandboxd.process.pid
    boundary = "sandscope-bound"
    spooled_peak_bytes = 0

    def body() -> Iterator[bytes]:
        nonlocal spooled_peak_bytes
        yield (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="/home/user/big"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        chunk = bytes(MIB)
        for _ in range(MULTIPART_UPLOAD_BYTES // MIB):
            spooled_peak_bytes = max(spooled_peak_bytes, spooled_bytes(pid, host_temp_dir))
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    with envd_client(small_sandbox) as client:
        warm_up(client)
        with PeakRss(pid) as rss:
            answer = client.post(
                "/files",
                content=body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )

    assert spooled_peak_bytes == 0, f"{spooled_peak_bytes} bytes spooled to host temp"
    assert answer.status_code == 507, answer.text
    assert set(answer.json()) == {"code", "message"}
    assert rss.growth_bytes < RSS_GROWTH_BOUND_BYTES, f"sandboxd grew {rss.growth_bytes} bytes"


# A chain of 30 directories with long names, each holding many files with long names: a few
# thousand entries, most with a path of some KiB. Listed whole it is 10s of MB of JSON.
DEEP_TREE_SCRIPT = """
import os
path = "/home/user/deep"
for level in range(30):
    path = os.path.join(path, "d%03d" % level + "x" * 96)
    os.makedirs(path)
    for index in range(200):
        open(os.path.join(path, "f%04d" % index + "y" * 96), "w").close()
"""


def test_a_deep_listing_answers_within_the_bound(
    sandboxd: RunningSandboxd, base_sandbox: Sandbox
) -> None:
    base_sandbox.files.write("/home/user/make_tree.py", DEEP_TREE_SCRIPT)
    base_sandbox.commands.run("python3 /home/user/make_tree.py", timeout=60)
    assert len(base_sandbox.files.list("/home/user/deep", depth=1)) == 1  # the tree is there

    with PeakRss(sandboxd.process.pid) as rss:
        try:
            entries = base_sandbox.files.list("/home/user/deep", depth=1_000_000)
        except InvalidArgumentException as exc:
            refusal: str | None = str(exc)
        else:
            refusal = None

    assert refusal is not None, f"{len(entries)} entries answered"
    assert "entries" in refusal or "bytes" in refusal, refusal
    assert rss.growth_bytes < RSS_GROWTH_BOUND_BYTES, f"sandboxd grew {rss.growth_bytes} bytes"
    # A bounded listing of the same tree still works.
    assert len(base_sandbox.files.list("/home/user/deep", depth=2)) == 202


def test_an_oversized_unary_connect_body_is_refused(small_sandbox: Sandbox) -> None:
    # A valid Stat of "/" padded with an unknown field: without a size limit it succeeds.
    body = b'{"path": "/", "pad": "' + b"x" * CONNECT_PAD_BYTES + b'"}'
    with envd_client(small_sandbox) as client:
        answer = client.post(
            "/filesystem.Filesystem/Stat",
            content=body,
            headers={"content-type": "application/json", "connect-protocol-version": "1"},
        )

    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["code"] == "invalid_argument"
    assert "bytes" in answer.json()["message"]


def test_an_oversized_connect_stream_message_is_refused(small_sandbox: Sandbox) -> None:
    # A valid Start of `true` padded with an unknown field.
    message = b'{"process": {"cmd": "true"}, "pad": "' + b"x" * CONNECT_PAD_BYTES + b'"}'
    frame = bytes([0]) + len(message).to_bytes(4, "big") + message
    with envd_client(small_sandbox) as client:
        answer = client.post(
            "/process.Process/Start",
            content=frame,
            headers={"content-type": "application/connect+json", "connect-protocol-version": "1"},
        )

    assert answer.status_code == 200  # a stream's error travels in its end
    end = answer.content[5:]
    assert answer.content[0] == 0x02, answer.content[:200]
    assert b'"invalid_argument"' in end and b"bytes" in end, end[:200]
