"""The official SDK's filesystem (e2b.sandbox_sync.filesystem) through the envd server."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2b import FileType, Sandbox
from e2b.exceptions import FileNotFoundException, InvalidArgumentException

from sandboxd.agent.agent import LIST_MAX_ENTRIES


def test_write_and_read_text_and_bytes(sandbox: Sandbox, home: Path) -> None:
    info = sandbox.files.write("notes/hello.txt", "héllo\n")

    assert (info.path, info.name, info.type) == (
        str(home / "notes/hello.txt"),
        "hello.txt",
        FileType.FILE,
    )
    assert sandbox.files.read("notes/hello.txt") == "héllo\n"
    assert sandbox.files.read(str(home / "notes/hello.txt"), format="bytes") == bytearray(
        "héllo\n".encode()
    )


def test_a_5_mb_file_round_trips_both_upload_ways(sandbox: Sandbox, home: Path) -> None:
    payload = os.urandom(5 << 20)
    sandbox.files.write("multipart.bin", payload)  # bytes: multipart/form-data
    sandbox.files.write("octet.bin", io.BytesIO(payload))  # file-like: octet-stream

    assert (home / "multipart.bin").read_bytes() == payload
    assert bytes(sandbox.files.read("octet.bin", format="bytes")) == payload
    with sandbox.files.read("octet.bin", format="stream") as stream:
        assert b"".join(stream) == payload


def test_gzip_upload(sandbox: Sandbox, home: Path) -> None:
    sandbox.files.write("zipped.txt", "compressed " * 1000, gzip=True)

    assert (home / "zipped.txt").read_text() == "compressed " * 1000


def test_write_files_uploads_several_parts(sandbox: Sandbox, home: Path) -> None:
    written = sandbox.files.write_files(
        [{"path": "a/one.txt", "data": "1"}, {"path": str(home / "b/two.txt"), "data": b"2"}]
    )

    assert [w.path for w in written] == [str(home / "a/one.txt"), str(home / "b/two.txt")]
    assert (home / "a/one.txt").read_text() == "1" and (home / "b/two.txt").read_text() == "2"


def test_read_missing_raises_file_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(FileNotFoundException):
        sandbox.files.read("does/not/exist.txt")
    with pytest.raises(InvalidArgumentException):
        sandbox.files.read(".")  # a directory


def test_list_make_dir_rename_remove_exists(sandbox: Sandbox, home: Path) -> None:
    assert sandbox.files.make_dir("proj/src") is True
    assert sandbox.files.make_dir("proj/src") is False
    sandbox.files.write("proj/src/main.py", "print(1)\n")
    sandbox.files.write("proj/README", "r")

    top = sandbox.files.list("proj")
    deep = sandbox.files.list("proj", depth=2)
    renamed = sandbox.files.rename("proj/README", "proj/README.md")

    assert [(e.name, e.type) for e in top] == [("README", FileType.FILE), ("src", FileType.DIR)]
    assert [e.path for e in deep] == [
        str(home / p) for p in ("proj/README", "proj/src", "proj/src/main.py")
    ]
    assert (renamed.name, renamed.path) == ("README.md", str(home / "proj/README.md"))
    assert sandbox.files.exists("proj/README.md") and not sandbox.files.exists("proj/README")
    sandbox.files.remove("proj")
    sandbox.files.remove("proj")  # missing: fine, as envd's RemoveAll
    assert not sandbox.files.exists("proj") and not (home / "proj").exists()


def test_get_info_fields(sandbox: Sandbox, home: Path) -> None:
    (home / "f.txt").write_bytes(b"12345")
    os.chmod(home / "f.txt", 0o644)
    os.symlink(home / "f.txt", home / "link")
    info = sandbox.files.get_info("f.txt")
    link = sandbox.files.get_info("link")

    assert (info.name, info.type, info.size, info.mode) == ("f.txt", FileType.FILE, 5, 0o644)
    assert info.permissions == "-rw-r--r--" and info.symlink_target is None
    mtime = datetime.fromtimestamp((home / "f.txt").stat().st_mtime, UTC)
    assert abs((info.modified_time - mtime).total_seconds()) < 0.001
    assert (link.type, link.symlink_target) == (FileType.SYMLINK, str(home / "f.txt"))
    with pytest.raises(FileNotFoundException):
        sandbox.files.get_info("nope")


def test_health_and_is_running(sandbox: Sandbox) -> None:
    assert sandbox.is_running() is True


def test_names_beyond_latin_1(sandbox: Sandbox, home: Path) -> None:
    sandbox.files.write("データ/ファイル.txt", "内容")

    assert sandbox.files.read("データ/ファイル.txt") == "内容"
    assert [e.name for e in sandbox.files.list("データ")] == ["ファイル.txt"]
    assert (home / "データ/ファイル.txt").read_text() == "内容"


def test_a_gzip_upload_bigger_than_one_inflated_chunk(sandbox: Sandbox, home: Path) -> None:
    payload = b"0123456789abcdef" * (300 << 10)  # 4.7 MiB inflated: several chunks

    sandbox.files.write("big.gz.txt", io.BytesIO(payload), gzip=True)

    assert (home / "big.gz.txt").read_bytes() == payload


def test_write_files_streams_many_parts(sandbox: Sandbox, home: Path) -> None:
    files = [{"path": f"many/{index}.bin", "data": bytes([index]) * 70_000} for index in range(40)]

    written = sandbox.files.write_files(files)  # type: ignore[arg-type]

    assert [w.name for w in written] == [f"{index}.bin" for index in range(40)]
    assert all((home / f"many/{i}.bin").read_bytes() == bytes([i]) * 70_000 for i in range(40))


def test_list_with_a_huge_depth_lists_a_small_tree_whole(sandbox: Sandbox, home: Path) -> None:
    (home / "t/u/v").mkdir(parents=True)

    listed = [entry.path for entry in sandbox.files.list("t", depth=1_000_000)]

    assert listed == [str(home / "t/u"), str(home / "t/u/v")]


def test_list_refuses_an_oversized_listing(sandbox: Sandbox, home: Path) -> None:
    (home / "wide").mkdir()
    for index in range(LIST_MAX_ENTRIES + 1):
        (home / "wide" / str(index)).touch()

    with pytest.raises(InvalidArgumentException, match="smaller depth"):
        sandbox.files.list("wide")
