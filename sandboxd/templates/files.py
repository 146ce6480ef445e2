"""Build contexts: the tars the SDK uploads for COPY steps, kept by the hash it names.

`GET /templates/{id}/files/{hash}` hands out an upload link signed by sandboxd (HMAC-SHA256
with a key of its own, kept in the data dir, over the template, the hash and an expiry);
the SDK then PUTs the tar there without the API key, as it does to E2B's storage. The tar
is streamed to disk (never held whole in memory), cut off past the size limit, and never
extracted on the host: a build extracts it inside its box (steps.py).

The hash is the SDK's `calculate_files_hash` (sha256 over the COPY line, the files' paths,
modes, sizes and contents), which the tar alone cannot reproduce (the destination is not
in it): sandboxd keeps the tar under the hash as given. A caller can therefore store a tar
under any hash of its own templates, which only ever reaches its own builds' boxes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlencode

from sandboxd.private_files import DIR_MODE, FILE_MODE

LINK_LIFETIME_S = 3600  # as long as the SDK's own upload timeout
# Uploads kept, like E2B's file cache: past either bound the oldest go (a build that still
# needed one then fails saying its files were never uploaded, and the SDK uploads again).
MAX_KEPT_FILES = 200
MAX_KEPT_UPLOADS = 4  # the total kept is at most this many times the upload limit
_HASH = re.compile(r"[0-9a-f]{64}")

INVALID = "invalid upload signature"
EXPIRED = "upload link has expired"


class UploadTooLarge(Exception):
    """The upload passed the size limit; nothing of it was kept."""


def is_files_hash(value: str) -> bool:
    """Whether `value` looks like the SDK's files hash (64 lowercase hex digits)."""
    return _HASH.fullmatch(value) is not None


class ContextFiles:
    """The uploaded build contexts under `directory`, at most `max_bytes` each."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(directory, DIR_MODE)
        self.directory = directory
        self.max_bytes = max_bytes
        self._key = _load_or_create_key(directory / "upload_key")
        for partial in directory.glob(".*.partial"):  # uploads cut off by a killed sandboxd
            partial.unlink(missing_ok=True)

    def path(self, files_hash: str) -> Path:
        assert is_files_hash(files_hash)
        return self.directory / f"{files_hash}.tar"

    def present(self, files_hash: str) -> bool:
        return self.path(files_hash).is_file()

    def link(self, base_url: str, template_id: str, files_hash: str, now_s: float) -> str:
        """A signed upload URL for this template's context `files_hash`, good for an hour."""
        expires = str(int(now_s) + LINK_LIFETIME_S)
        signature = self._signature(template_id, files_hash, expires)
        query = urlencode({"expires": expires, "signature": signature})
        path = f"templates/{quote(template_id, safe='')}/files/{files_hash}/upload"
        return f"{base_url.rstrip('/')}/{path}?{query}"

    def refusal(
        self, template_id: str, files_hash: str, expires: str, signature: str, now_s: float
    ) -> str | None:
        """Why an upload with these link fields is refused; None when it may go on. The
        signature is checked first, so only a genuine link is ever told it expired."""
        if not expires.isdigit() or not is_files_hash(files_hash):
            return INVALID
        expected = self._signature(template_id, files_hash, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return INVALID
        if int(expires) < now_s:
            return EXPIRED
        return None

    async def receive(self, files_hash: str, chunks: AsyncIterator[bytes]) -> int:
        """Write the upload to disk as it comes, then put it in place; UploadTooLarge (and
        nothing kept) past `max_bytes`. Returns its size."""
        partial = self.directory / f".{files_hash}.{secrets.token_hex(8)}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadTooLarge()
                    out.write(chunk)
            os.replace(partial, self.path(files_hash))
        finally:
            partial.unlink(missing_ok=True)
        self._evict_oldest(keep=self.path(files_hash))
        return size

    def _evict_oldest(self, keep: Path) -> None:
        kept = []
        for path in self.directory.glob("*.tar"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            kept.append((stat.st_mtime, stat.st_size, path))
        kept.sort(reverse=True)  # newest first
        total_bytes = 0
        for index, (_, size, path) in enumerate(kept):
            total_bytes += size
            too_many = index >= MAX_KEPT_FILES or total_bytes > MAX_KEPT_UPLOADS * self.max_bytes
            if too_many and path != keep:
                path.unlink(missing_ok=True)

    def _signature(self, template_id: str, files_hash: str, expires: str) -> str:
        message = f"{template_id}\n{files_hash}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def _load_or_create_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "w") as out:
            out.write(key.hex() + "\n")
        return key


def now_s() -> float:
    return time.time()
