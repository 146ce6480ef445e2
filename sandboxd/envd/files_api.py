"""envd's `/files`: download (GET, raw bytes) and upload (POST, multipart or raw).

Errors are JSON `{"code": <status>, "message": ...}` (envd-openapi.yml Error); the SDK
maps 400, 401, 404 and 507 to exception types (e2b/envd/api.py _DEFAULT_API_ERROR_MAP,
404 -> FileNotFoundException in the filesystem module).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from urllib.parse import quote

from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sandboxd.agent import AgentClient, AgentError, EntryInfo
from sandboxd.envd import multipart_parts
from sandboxd.envd.bodies import coalesced, discard
from sandboxd.envd.file_metadata import metadata_from_headers

# What sandboxd holds of an upload at a time, before the agent channel's copies of it
# (base64, JSON line: about 5 of them). 256 KiB keeps an upload's cost near 2 MiB while a
# write request per 256 KiB is still far from the agent round trip being what limits speed.
UPLOAD_CHUNK_BYTES = 256 << 10
# The most one piece of a gzip'd upload inflates to before it is written into the box. A
# gzip bomb inflates about 1000:1; without this bound one 64 KiB read became 64 MiB at once.
INFLATE_CHUNK_BYTES = UPLOAD_CHUNK_BYTES
_GZIP = ("gzip", "x-gzip")
_ENCODINGS = ("", "identity", *_GZIP)

# Agent error code -> HTTP status of /files.
_STATUS = {
    "not_found": 404,
    "invalid_argument": 400,
    "already_exists": 400,  # a parent of the path is a file
    "failed_precondition": 400,
    "permission_denied": 403,
    "resource_exhausted": 507,
    "unavailable": 502,
    "deadline_exceeded": 504,
}


def api_error(status: int, message: str) -> Response:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def agent_error(error: AgentError) -> Response:
    status = _STATUS.get(error.code, 500)
    message = "not enough disk space available" if status == 507 else error.message
    return api_error(status, message)


async def download(request: Request, agent: AgentClient) -> Response:
    """The file's bytes, streamed; 404 when missing, 400 for a directory."""
    path = request.query_params.get("path", "")
    if not path:
        return api_error(400, "the 'path' query parameter is required")
    chunks = agent.read_file_chunks(path)
    try:
        first = await anext(chunks)  # errors must come before the 200 is sent
    except StopAsyncIteration:
        first = b""
    except AgentError as exc:
        return agent_error(exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
                async for chunk in chunks:
                    yield chunk
        finally:
            await chunks.aclose()

    # RFC 6266/5987 form: header values are Latin-1 on the wire, file names need not be.
    name = quote(os.path.basename(path.rstrip("/")), safe="")
    headers = {"content-disposition": f"attachment; filename*=UTF-8''{name}"}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


async def upload(request: Request, agent: AgentClient) -> Response:
    """Write one file (octet-stream, `path` required) or several (multipart field `file`,
    each part's filename its path, except that `path` names the first file if given).

    The body streams into the box as it arrives, at most one chunk held: the box's disk
    quota, not sandboxd's memory or host temp, is what bounds an upload. On an error the
    rest of the body is discarded before the answer, so the client reads it."""
    body = request.stream()
    try:
        answer = await _write_upload(request, body, agent)
    except AgentError as exc:
        answer = agent_error(exc)
    except (zlib.error, ValueError) as exc:
        answer = api_error(400, f"cannot read the upload: {exc}")
    except ClientDisconnect:
        return api_error(400, "the client went away during the upload")
    if answer.status_code != 200:
        await discard(body)
    return answer


async def _write_upload(
    request: Request, body: AsyncIterator[bytes], agent: AgentClient
) -> Response:
    """The upload's answer: what was written (with the metadata kept on each file, from
    the X-Metadata-* headers), or why nothing could be."""
    path = request.query_params.get("path", "")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    encoding = request.headers.get("content-encoding", "").strip().lower()
    try:
        metadata = metadata_from_headers(request.headers.raw)
    except ValueError as exc:
        return api_error(400, f"invalid file metadata: {exc}")
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary", b"")
        written = await _upload_multipart(body, agent, path, boundary, metadata)
    elif not path:
        return api_error(400, "the 'path' query parameter is required")
    elif encoding not in _ENCODINGS:
        return api_error(400, f"unsupported Content-Encoding {encoding!r}")
    else:
        data = coalesced(_decoded(body, encoding), UPLOAD_CHUNK_BYTES)
        written = [await agent.write_file(path, data, metadata=metadata)]
    if not written:
        return api_error(400, "no file in the upload")
    return JSONResponse([_written_json(entry) for entry in written])


def _written_json(entry: EntryInfo) -> dict[str, object]:
    """An upload answer's EntryInfo (envd-openapi.yml): metadata only when there is some."""
    answer: dict[str, object] = {"path": entry.path, "name": entry.name, "type": "file"}
    if entry.metadata:
        answer["metadata"] = entry.metadata
    return answer


async def _upload_multipart(
    body: AsyncIterator[bytes],
    agent: AgentClient,
    path: str,
    boundary: bytes,
    metadata: dict[str, str],
) -> list[EntryInfo]:
    """The entry of each file part written, in order, each with `metadata`; parts not
    named `file` or without a filename are read past."""
    if not boundary:
        raise ValueError("the multipart Content-Type has no boundary")
    events = multipart_parts.events(body, boundary)
    written: list[EntryInfo] = []
    async for event in events:
        if not isinstance(event, multipart_parts.PartStart):
            raise ValueError("data outside a part")
        data = coalesced(multipart_parts.part_data(events), UPLOAD_CHUNK_BYTES)
        if event.name != "file" or event.filename is None:
            await discard(data)
            continue
        target = path if path and not written else event.filename
        if not target:
            raise ValueError("a file part has no filename and no 'path' was given")
        written.append(await agent.write_file(target, data, metadata=metadata))
    return written


async def _decoded(body: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """The body, gunzipped on the fly when the SDK sent it gzip'd. Each piece inflates to at
    most INFLATE_CHUNK_BYTES, so a bomb costs one chunk at a time and fills at most the box's
    disk (zlib.error when it is not gzip)."""
    if encoding not in _GZIP:
        async for chunk in body:
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)
    async for chunk in body:
        pending = chunk
        while pending and not inflater.eof:
            if inflated := inflater.decompress(pending, INFLATE_CHUNK_BYTES):
                yield inflated
            pending = inflater.unconsumed_tail
    if not inflater.eof:
        raise zlib.error("the gzip stream ends early")
    if rest := inflater.flush():  # empty in practice: every input byte was inflated above
        yield rest
