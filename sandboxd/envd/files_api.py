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

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sandboxd.agent import AgentClient, AgentError, EntryInfo

UPLOAD_CHUNK_BYTES = 1 << 20

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
    """Write one file (octet-stream, `path` required) or several (multipart field
    `file`, each part's filename its path unless `path` names the only one)."""
    path = request.query_params.get("path", "")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            written = await _upload_multipart(request, agent, path)
        elif not path:
            return api_error(400, "the 'path' query parameter is required")
        else:
            body = _decoded_body(request, request.headers.get("content-encoding", ""))
            written = [await agent.write_file(path, body)]
    except AgentError as exc:
        return agent_error(exc)
    except (zlib.error, ValueError) as exc:
        return api_error(400, f"cannot read the upload: {exc}")
    if not written:
        return api_error(400, "no file in the upload")
    return JSONResponse([{"path": e.path, "name": e.name, "type": "file"} for e in written])


async def _upload_multipart(request: Request, agent: AgentClient, path: str) -> list[EntryInfo]:
    async with request.form(max_files=10_000) as form:
        parts = [part for part in form.getlist("file") if isinstance(part, UploadFile)]
        written = []
        for part in parts:
            target = path if path and len(parts) == 1 else part.filename or ""
            if not target:
                raise ValueError("a file part has no filename and no 'path' was given")
            written.append(await agent.write_file(target, _read_upload(part)))
        return written


async def _read_upload(part: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await part.read(UPLOAD_CHUNK_BYTES):
        yield chunk


async def _decoded_body(request: Request, encoding: str) -> AsyncIterator[bytes]:
    """The raw request body, gunzipped on the fly when the SDK sent it gzip'd."""
    if encoding.strip().lower() != "gzip":
        async for chunk in request.stream():
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)
    async for chunk in request.stream():
        yield inflater.decompress(chunk)
    yield inflater.flush()
