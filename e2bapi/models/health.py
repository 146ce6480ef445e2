"""The API's health, as the health check reports it."""

from __future__ import annotations

from e2bapi.models.base import ApiModel


class Health(ApiModel):
    """Healthy on any 2xx (E2B answers 200 text where the spec says 204)."""

    healthy: bool
    status_code: int
    detail: str
