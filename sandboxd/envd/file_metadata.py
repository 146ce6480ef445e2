"""A file's metadata from the `X-Metadata-<key>: <value>` headers of an upload.

As envd-openapi.yml's POST /files has it (docs/E2B-API.md, "File metadata"): the prefix
is dropped and the key lowercased; the first of repeated headers counts; keys and values
are printable ASCII within the agent's bounds (agent.py METADATA_*), else 400.
"""

from __future__ import annotations

from collections.abc import Iterable

from sandboxd.agent.agent import METADATA_MAX_KEYS, metadata_problem

HEADER_PREFIX = b"x-metadata-"


def metadata_from_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The metadata the headers ask to keep ({} when none: the upload then clears it);
    ValueError saying which bound a key or value breaks."""
    metadata: dict[str, str] = {}
    for name, value in raw_headers:
        lowered = name.lower()
        if not lowered.startswith(HEADER_PREFIX):
            continue
        key = lowered[len(HEADER_PREFIX) :].decode("latin-1")
        metadata.setdefault(key, value.decode("latin-1"))
        if len(metadata) > METADATA_MAX_KEYS:  # stop reading early: the bound is broken
            break
    if problem := metadata_problem(metadata):
        raise ValueError(problem)
    return metadata
