"""Reading request bodies and query parameters; anything malformed is a 400, never a 500."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from sandboxd.problems import ApiProblem


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; a missing body is `{}` unless `required`."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiProblem(400, "request body is required")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as bad:
        raise ApiProblem(400, f"request body is not valid JSON: {bad}") from None
    if not isinstance(body, dict):
        raise ApiProblem(400, "request body must be a JSON object")
    return body


def field_of(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """`body[name]` if it has type `kind` (bool is not an int here), else a 400."""
    if name not in body or body[name] is None:
        return default
    value = body[name]
    wrong_bool = kind is int and isinstance(value, bool)
    if not isinstance(value, kind) or wrong_bool:
        raise ApiProblem(400, f"'{name}' must be of type {kind.__name__}")
    return value


def string_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """A `{string: string}` object such as metadata; every string valid UTF-8."""
    value = field_of(body, name, dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ApiProblem(400, f"'{name}' must map strings to strings")
    if not all(_is_utf8(k) and _is_utf8(v) for k, v in value.items()):
        raise ApiProblem(400, f"'{name}' holds text that is not valid UTF-8")
    return dict(value)


def env_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """Environment variables: names non-empty without '=', nothing with a NUL byte."""
    envs = string_map(body, name)
    for key, value in envs.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ApiProblem(400, f"'{name}' has an invalid variable {key!r}")
    return envs


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
        return False
    return True


# SQLite integers (and E2B's int64 parameters) end here.
INT64_MAX = 2**63 - 1


def int_query(
    request: Request, name: str, default: int | None, lowest: int, highest: int = INT64_MAX
) -> int | None:
    """An integer query parameter within [lowest, highest], else a 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiProblem(400, f"query parameter '{name}' must be an integer") from None
    if not lowest <= value <= highest:
        raise ApiProblem(400, f"query parameter '{name}' must be between {lowest} and {highest}")
    return value


def bool_query(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise ApiProblem(400, f"query parameter '{name}' must be true or false")
    return raw.lower() in ("true", "1")
