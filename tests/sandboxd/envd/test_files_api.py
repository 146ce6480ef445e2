"""envd's `/files` upload, raw: streamed bodies, their errors and the rest of a refused body."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx

from sandboxd.envd.connect import MAX_MESSAGE_BYTES

BOUNDARY = "b0undary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(name: str, filename: str | None, data: bytes) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"


def closing() -> bytes:
    return f"--{BOUNDARY}--\r\n".encode()


def in_small_pieces(body: bytes, size: int = 7) -> Iterator[bytes]:
    """The body as many tiny writes, so parts and headers straddle reads."""
    for offset in range(0, len(body), size):
        yield body[offset : offset + size]


def test_multipart_parts_split_across_reads(http: httpx.Client, home: Path) -> None:
    body = (
        part("file", "a.txt", b"alpha")
        + part("note", None, b"skipped")
        + part("file", "sub/b.txt", b"beta" * 1000)
    )
    answer = http.post("/files", content=in_small_pieces(body + closing()), headers=MULTIPART)

    assert answer.status_code == 200, answer.text
    assert [entry["path"] for entry in answer.json()] == [
        str(home / "a.txt"),
        str(home / "sub/b.txt"),
    ]
    assert (home / "sub/b.txt").read_bytes() == b"beta" * 1000
    assert not (home / "note").exists()


def test_path_names_the_first_file_of_a_multipart_upload(http: httpx.Client, home: Path) -> None:
    body = part("file", "ignored.txt", b"one") + closing()
    answer = http.post("/files", params={"path": "chosen.txt"}, content=body, headers=MULTIPART)

    assert answer.status_code == 200, answer.text
    assert (home / "chosen.txt").read_bytes() == b"one"


def test_a_multipart_body_without_its_end_is_refused(http: httpx.Client) -> None:
    answer = http.post("/files", content=part("file", "cut.txt", b"x"), headers=MULTIPART)

    assert answer.status_code == 400
    assert answer.json()["code"] == 400 and "closing boundary" in answer.json()["message"]


def test_an_oversized_part_header_is_refused(http: httpx.Client) -> None:
    body = part("file", "f" * (20 << 10), b"x") + closing()
    answer = http.post("/files", content=body, headers=MULTIPART)

    assert answer.status_code == 400
    assert "header" in answer.json()["message"].lower()


def test_a_broken_gzip_upload_is_refused(http: httpx.Client) -> None:
    truncated = gzip.compress(b"z" * 100_000)[:-20]
    answer = http.post(
        "/files",
        params={"path": "broken.txt"},
        content=truncated,
        headers={"content-type": "application/octet-stream", "content-encoding": "gzip"},
    )

    assert answer.status_code == 400
    assert set(answer.json()) == {"code", "message"}


def test_an_unknown_content_encoding_is_refused(http: httpx.Client) -> None:
    answer = http.post(
        "/files", params={"path": "x"}, content=b"data", headers={"content-encoding": "br"}
    )

    assert answer.status_code == 400 and "Content-Encoding" in answer.json()["message"]


def test_a_refused_upload_is_answered_after_its_body(http: httpx.Client, home: Path) -> None:
    # The write fails at once (a file stands where a directory must be); the client is still
    # sending 8 MiB and must read the error, not a reset.
    (home / "plain").write_text("a file")
    body = (bytes(1 << 20) for _ in range(8))
    answer = http.post("/files", params={"path": "plain/child"}, content=body)

    assert answer.status_code == 400, answer.text


def test_an_oversized_unary_message_is_refused_after_its_body(http: httpx.Client) -> None:
    body = b'{"path": "/", "pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    answer = http.post(
        "/filesystem.Filesystem/Stat",
        content=in_small_pieces(body, 1 << 16),
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_argument"
    assert str(MAX_MESSAGE_BYTES) in answer.json()["message"]
