"""Webhooks that receive lifecycle events (spec: e2b-events-webhooks-openapi.yml)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, SecretStr

from e2bapi.models.base import ApiModel, RequestModel


class WebhookCreate(RequestModel):
    """Body of `POST /events/webhooks`. The secret signs deliveries; the API never returns it."""

    name: str
    url: str
    events: list[str]
    enabled: bool | None = None
    signature_secret: SecretStr = Field(min_length=32)


class WebhookConfiguration(RequestModel):
    """Body of `PATCH /events/webhooks/{webhookID}`: only the fields to change."""

    enabled: bool | None = None
    name: str | None = None
    url: str | None = None
    events: list[str] | None = None
    signature_secret: SecretStr | None = Field(default=None, min_length=32)


class WebhookDetail(ApiModel):
    """A registered webhook (answer of create, get, list and update)."""

    id: str
    team_id: str
    name: str
    created_at: datetime
    url: str
    enabled: bool
    events: list[str]
