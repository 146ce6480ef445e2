"""The two kinds of wire model: answers (lenient about extras) and requests (strict)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A body the API sends. Unknown fields are kept, since the API grows.

    Python names are snake_case; the wire names are camelCase unless a field says otherwise
    (`sandboxID`, `memoryMB`). Both names are accepted when building one by hand.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The body as the API would send it (wire names, JSON types)."""
        return self.model_dump(mode="json", exclude_none=True)


class RequestModel(ApiModel):
    """A body the client sends. Unknown fields are refused: they are typos, not news.

    Secrets (`SecretStr` fields) stay masked in repr, str and model_dump; only `to_wire`
    reveals them, for the request body itself.
    """

    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The body to send: wire names, JSON types, secrets in the clear."""
        body = super().to_wire()
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                body[field.alias or name] = value.get_secret_value()
        return body
