"""Webhook actions: register, read, change and remove event webhooks."""

from __future__ import annotations

from e2bapi.decoding import decode
from e2bapi.exchange import Call, Exchange, send
from e2bapi.models.webhooks import WebhookConfiguration, WebhookCreate, WebhookDetail

_WEBHOOK = "/events/webhooks/{webhookID}"


def create_webhook(webhook: WebhookCreate) -> Exchange[WebhookDetail]:
    """Register a webhook. Never repeated after an unknown outcome."""
    call = Call("POST", "/events/webhooks", json=webhook.to_wire(), retry_safe=False)
    reply = yield from send(call)
    return decode(reply, WebhookDetail)


def list_webhooks() -> Exchange[list[WebhookDetail]]:
    """Every webhook of the team."""
    reply = yield from send(Call("GET", "/events/webhooks"))
    return decode(reply, list[WebhookDetail])


def get_webhook(webhook_id: str) -> Exchange[WebhookDetail]:
    """One webhook."""
    reply = yield from send(Call("GET", _WEBHOOK, {"webhookID": webhook_id}))
    return decode(reply, WebhookDetail)


def update_webhook(webhook_id: str, changes: WebhookConfiguration) -> Exchange[WebhookDetail]:
    """Change the given fields of a webhook."""
    call = Call("PATCH", _WEBHOOK, {"webhookID": webhook_id}, json=changes.to_wire())
    reply = yield from send(call)
    return decode(reply, WebhookDetail)


def delete_webhook(webhook_id: str) -> Exchange[None]:
    """Remove a webhook (E2B answers 200 with no body)."""
    yield from send(Call("DELETE", _WEBHOOK, {"webhookID": webhook_id}))
