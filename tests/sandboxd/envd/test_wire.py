"""The envd wire format, raw: Connect envelopes, end-of-stream errors, unary errors.

Every message is parsed with the SDK's generated classes *strictly* (no unknown
fields allowed), so a shape the SDK could not read fails here.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

import httpx
from e2b.envd.filesystem import filesystem_pb
from e2b.envd.process import process_pb

STREAM = {"content-type": "application/connect+json", "connect-protocol-version": "1"}
UNARY = {"content-type": "application/json", "connect-protocol-version": "1"}


def envelope(message: dict[str, Any], flags: int = 0) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(data)) + data


def frames(body: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(flags, message) for each envelope; the body must end exactly on one."""
    out, offset = [], 0
    while offset < len(body):
        flags, length = struct.unpack(">BI", body[offset : offset + 5])
        out.append((flags, json.loads(body[offset + 5 : offset + 5 + length])))
        offset += 5 + length
    assert offset == len(body)
    return out


def start(http: httpx.Client, request: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post(
        "/process.Process/Start", content=envelope(request), headers={**STREAM, **headers}
    )


def command(script: str) -> dict[str, Any]:
    return {"process": {"cmd": "/bin/sh", "args": ["-c", script]}, "stdin": False}


def test_start_streams_start_data_end_then_end_of_stream(http: httpx.Client) -> None:
    response = start(http, command("printf out; printf err >&2; exit 4"))
    received = frames(response.content)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/connect+json"
    assert [flags for flags, _ in received] == [0, 0, 0, 0, 2]
    messages = [process_pb.StartResponse.from_json(json.dumps(m)) for _, m in received[:-1]]
    assert messages[0].event.event.field == "start" and messages[0].event.event.value.pid > 0
    outputs = {
        m.event.event.value.output.field: m.event.event.value.output.value for m in messages[1:3]
    }
    assert outputs == {"stdout": b"out", "stderr": b"err"}
    end = messages[3].event.event.value
    assert (end.exit_code, end.exited, end.status, end.error) == (
        4,
        True,
        "exit status 4",
        "exit status 4",
    )
    assert received[-1] == (2, {})


def test_keepalive_frames_when_the_client_asks(http: httpx.Client) -> None:
    response = start(http, command("sleep 2.5; echo done"), **{"Keepalive-Ping-Interval": "1"})
    received = [message for _, message in frames(response.content)]

    assert {"event": {"keepalive": {}}} in received
    for message in received[:-1]:
        process_pb.StartResponse.from_json(json.dumps(message))


def test_a_failed_start_ends_the_stream_with_an_error(http: httpx.Client) -> None:
    bad_cwd = start(http, {"process": {"cmd": "/bin/true", "cwd": "/no/such/dir"}})
    no_cmd = start(http, {"process": {}})

    assert bad_cwd.status_code == 200
    [(flags, message)] = frames(bad_cwd.content)
    assert flags == 2 and message["error"]["code"] == "invalid_argument"
    assert "does not exist" in message["error"]["message"]
    assert frames(no_cmd.content)[-1][1]["error"]["code"] == "invalid_argument"


def test_connect_to_an_unknown_pid_ends_with_not_found(http: httpx.Client) -> None:
    request = envelope({"process": {"pid": 999999}})
    response = http.post("/process.Process/Connect", content=request, headers=STREAM)

    assert frames(response.content) == [
        (2, {"error": {"code": "not_found", "message": "process with pid 999999 not found"}})
    ]


def test_connect_timeout_header_bounds_the_stream_and_the_process(http: httpx.Client) -> None:
    response = http.post(
        "/process.Process/Start",
        content=envelope(command("sleep 30")),
        headers={**STREAM, "Connect-Timeout-Ms": "500"},
    )
    received = frames(response.content)
    flags, last = received[-1]

    # Both happen at the deadline: the stream ends, and the process is killed.
    assert flags == 2
    if "error" in last:
        assert last["error"]["code"] == "deadline_exceeded"
    else:
        assert received[-2][1]["event"]["end"]["status"] == "signal: killed"
    assert no_processes_within(http, timeout_s=5)


def no_processes_within(http: httpx.Client, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http.post("/process.Process/List", json={}, headers=UNARY).json() == {"processes": []}:
            return True
        time.sleep(0.05)
    return False


def test_stream_input_takes_a_client_stream(http: httpx.Client) -> None:
    request = envelope({"process": {"cmd": "/bin/cat"}, "tag": "catter"})  # stdin unset: on
    with http.stream("POST", "/process.Process/Start", content=request, headers=STREAM) as out:
        chunks = out.iter_bytes()
        pid = frames(next(chunks))[0][1]["event"]["start"]["pid"]
        data = {"input": {"stdin": base64.b64encode(b"hi").decode()}}
        body = envelope({"start": {"process": {"tag": "catter"}}}) + envelope({"data": data})
        sent = http.post("/process.Process/StreamInput", content=body, headers=STREAM)
        closed = http.post(
            "/process.Process/CloseStdin", json={"process": {"pid": pid}}, headers=UNARY
        )
        rest = frames(b"".join(chunks))

    assert frames(sent.content) == [(0, {}), (2, {})]
    assert closed.json() == {}
    assert {"event": {"data": {"stdout": base64.b64encode(b"hi").decode()}}} in [m for _, m in rest]
    assert rest[-2][1]["event"]["end"]["exitCode"] == 0


def test_unary_list_and_signal_shapes(http: httpx.Client) -> None:
    handle = http.stream(
        "POST", "/process.Process/Start", content=envelope(command("sleep 30")), headers=STREAM
    )
    with handle as response:
        chunks = response.iter_bytes()
        pid = frames(next(chunks))[0][1]["event"]["start"]["pid"]
        listed = http.post("/process.Process/List", json={}, headers=UNARY)
        signal = {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"}
        killed = http.post("/process.Process/SendSignal", json=signal, headers=UNARY)
        rest = b"".join(chunks)

    parsed = process_pb.ListResponse.from_json(listed.text)
    assert listed.headers["content-type"] == "application/json"
    assert [(p.pid, p.config.cmd, p.config.args) for p in parsed.processes] == [
        (pid, "/bin/sh", ["-c", "sleep 30"])
    ]
    assert (killed.status_code, killed.json()) == (200, {})
    assert frames(rest)[-2][1]["event"]["end"]["status"] == "signal: killed"


def test_unary_errors_are_connect_json(http: httpx.Client) -> None:
    signal = {"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"}
    missing = http.post("/process.Process/SendSignal", json=signal, headers=UNARY)
    unknown_method = http.post("/process.Process/Nope", json={}, headers=UNARY)
    watch = http.post("/filesystem.Filesystem/CreateWatcher", json={"path": "nope"}, headers=UNARY)
    not_json = http.post("/process.Process/List", content=b"{nope", headers=UNARY)
    wrong_type = http.post(
        "/process.Process/List", content=b"{}", headers={"content-type": "text/plain"}
    )

    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (unknown_method.status_code, unknown_method.json()["code"]) == (501, "unimplemented")
    assert (watch.status_code, watch.json()["code"]) == (404, "not_found")
    assert (not_json.status_code, not_json.json()["code"]) == (400, "invalid_argument")
    assert wrong_type.json()["code"] == "invalid_argument"


def test_filesystem_shapes_parse_strictly(http: httpx.Client, home: Any) -> None:
    (home / "d").mkdir()
    (home / "d/f.txt").write_text("hello")
    stat = http.post("/filesystem.Filesystem/Stat", json={"path": "d/f.txt"}, headers=UNARY)
    listing = http.post("/filesystem.Filesystem/ListDir", json={"path": "d"}, headers=UNARY)
    made = http.post("/filesystem.Filesystem/MakeDir", json={"path": "d/new"}, headers=UNARY)
    again = http.post("/filesystem.Filesystem/MakeDir", json={"path": "d/new"}, headers=UNARY)
    moved = http.post(
        "/filesystem.Filesystem/Move",
        json={"source": "d/f.txt", "destination": "d/g.txt"},
        headers=UNARY,
    )

    entry = filesystem_pb.StatResponse.from_json(stat.text).entry
    assert stat.json()["entry"]["size"] == "5"  # int64 as a string
    assert (entry.name, entry.type, entry.size) == ("f.txt", filesystem_pb.FileType.FILE, 5)
    assert entry.modified_time is not None and entry.modified_time.seconds > 0
    assert len(filesystem_pb.ListDirResponse.from_json(listing.text).entries) == 1
    assert (
        filesystem_pb.MakeDirResponse.from_json(made.text).entry.type
        == filesystem_pb.FileType.DIRECTORY
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_exists")
    assert filesystem_pb.MoveResponse.from_json(moved.text).entry.name == "g.txt"


def test_files_endpoint_raw(http: httpx.Client, home: Any) -> None:
    uploaded = http.post(
        "/files", params={"path": "raw/x.bin"}, content=b"\x00\x01",
        headers={"content-type": "application/octet-stream"},
    )  # fmt: skip
    downloaded = http.get("/files", params={"path": "raw/x.bin", "username": "user"})
    missing = http.get("/files", params={"path": "raw/nope"})
    no_path = http.post(
        "/files", content=b"x", headers={"content-type": "application/octet-stream"}
    )

    assert uploaded.json() == [{"path": str(home / "raw/x.bin"), "name": "x.bin", "type": "file"}]
    assert downloaded.content == b"\x00\x01"
    assert (missing.status_code, missing.json()["code"]) == (404, 404)
    assert no_path.status_code == 400


def test_disk_full_is_507(http: httpx.Client) -> None:
    response = http.post(
        "/files", params={"path": "/dev/full"}, content=b"x" * 100_000,
        headers={"content-type": "application/octet-stream"},
    )  # fmt: skip

    assert (response.status_code, response.json()["code"]) == (507, 507)
