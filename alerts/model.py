"""The shapes shared by rule evaluation, the store and the notifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Severity = Literal["info", "warning", "critical"]
AlertState = Literal["pending", "firing", "resolved"]
# What a notification announces: a group that started or kept firing, one that resolved,
# or a test sent from the dashboard ("send test notification").
NotificationKind = Literal["firing", "resolved", "test"]
ReceiverKind = Literal["webhook", "slack", "email"]


@dataclass(frozen=True)
class AlertInstance:
    """One rule firing for one subject (a sandbox, a team, a collector job).

    `labels` say what it is about (rule, severity, sandbox_id, template_id, team_id, and the
    rule's scope); `links` are dashboard paths that explain it (sandbox, incident, template
    page), relative to the dashboard's base URL."""

    rule: str
    severity: Severity
    state: AlertState
    labels: dict[str, str]
    summary: str  # one line, built from stored values only (outside text is quoted, bounded)
    value: float | None  # the observed value that crossed the threshold, when there is one
    started_at: datetime  # UTC: when the condition first held (pending began)
    links: tuple[str, ...] = ()
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Notification:
    """What one receiver is told about one group: every alert of a rule that shares the
    group's labels (so 50 sandboxes of one template make one notification)."""

    group_key: str  # stable: rule name plus the grouping labels' values
    rule: str
    severity: Severity
    kind: NotificationKind
    group_labels: dict[str, str]
    alerts: tuple[AlertInstance, ...]
    created_at: datetime  # UTC
    dashboard_url: str = ""  # base URL the links are relative to ("" when unknown)


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to deliver one notification to one receiver, kept for the Alerts page."""

    receiver: str  # the receiver's name in the rules file
    receiver_kind: ReceiverKind
    group_key: str
    notification_kind: NotificationKind
    attempt: int  # 1 for the first try
    sent_at: datetime  # UTC
    ok: bool
    # The HTTP status and a bounded body excerpt, the SMTP reply, or the error (<= 500 chars).
    detail: str
    duration_ms: float
    extra: dict[str, str] = field(default_factory=dict)
