"""Turning HTTP answers into models or errors, the same way for every endpoint."""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from e2bapi.errors import (
    APIError,
    AuthenticationError,
    BadPayloadError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
)
from e2bapi.exchange import Call, Reply

T = TypeVar("T")

_ERROR_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    503: ServiceUnavailableError,
}
_MESSAGE_LIMIT_CHARS = 300


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(type_: type[T]) -> TypeAdapter[T]:
    """One adapter per type: building one costs far more than validating with it."""
    adapter = _ADAPTERS.get(type_)
    if adapter is None:
        adapter = _ADAPTERS[type_] = TypeAdapter(type_)
    return adapter


def decode(reply: Reply, type_: type[T]) -> T:
    """Parse a reply's JSON body as `type_`, or raise `BadPayloadError` naming the field."""
    try:
        return _adapter(type_).validate_json(reply.content)
    except ValidationError as invalid:
        first = invalid.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise BadPayloadError(reply.call.endpoint, None, "the body is not JSON") from None
        raise BadPayloadError(
            reply.call.endpoint, _field_path(first["loc"]), first["msg"]
        ) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "(body)"


def error_for(
    call: Call, status_code: int, headers: Mapping[str, str], content: bytes, now: datetime
) -> APIError:
    """The error a non-2xx answer stands for; `now` (UTC) dates a Retry-After given as a date."""
    message, error_code = _error_message(content)
    endpoint = call.endpoint
    if status_code == 429:
        retry_after_s = parse_retry_after(headers.get("retry-after"), now)
        return RateLimitedError(
            endpoint, status_code, message, error_code, retry_after_s=retry_after_s
        )
    if status_code == 400 and "not found" in message.lower():
        # E2B answers an unknown template build with 400 "Build '<id>' not found".
        return NotFoundError(endpoint, status_code, message, error_code)
    error_class = _ERROR_BY_STATUS.get(status_code)
    if error_class is None:
        error_class = ServerError if status_code >= 500 else BadRequestError
    return error_class(endpoint, status_code, message, error_code)


def _error_message(content: bytes) -> tuple[str, str | None]:
    """E2B's `{"code", "message", "error_code"?}`; any other body is quoted, shortened."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        error_code = body.get("error_code")
        return body["message"], error_code if isinstance(error_code, str) else None
    text = content.decode("utf-8", errors="replace").strip()
    return (text[:_MESSAGE_LIMIT_CHARS] or "(empty body)"), None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # A date with a `-0000` zone (or none) parses naive; HTTP dates are always UTC.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
