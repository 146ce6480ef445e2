"""Reading fields out of protobuf-JSON request messages, strictly enough to answer
`invalid_argument` instead of failing deeper in. protobuf JSON omits default values, so
a missing field reads as its zero value."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sandboxd.envd.connect import ConnectError

Message = dict[str, Any]


def obj(message: Message, key: str) -> Message:
    value = message.get(key) or {}
    if not isinstance(value, dict):
        raise ConnectError("invalid_argument", f"'{key}' must be an object")
    return value


def string(message: Message, key: str) -> str:
    value = message.get(key) or ""
    if not isinstance(value, str):
        raise ConnectError("invalid_argument", f"'{key}' must be a string")
    return value


def integer(message: Message, key: str) -> int:
    """A 32-bit (JSON number) or 64-bit (JSON string) integer."""
    value = message.get(key) or 0
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    except (TypeError, ValueError):
        raise ConnectError("invalid_argument", f"'{key}' must be an integer") from None


def strings(message: Message, key: str) -> list[str]:
    value = message.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConnectError("invalid_argument", f"'{key}' must be a list of strings")
    return value


def string_map(message: Message, key: str) -> dict[str, str]:
    value = message.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConnectError("invalid_argument", f"'{key}' must map strings to strings")
    return value


def data(message: Message, key: str) -> bytes:
    """A `bytes` field: standard or URL-safe base64, padded or not (protobuf JSON)."""
    value = string(message, key)
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise ConnectError("invalid_argument", f"'{key}' is not base64") from None
