"""Metric actions: a sandbox's history, the latest sample of many, and team usage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from e2bapi.decoding import decode
from e2bapi.exchange import Call, Exchange, send, send_all
from e2bapi.models.metrics import (
    MaxTeamMetric,
    SandboxesWithMetrics,
    SandboxMetric,
    TeamMaxMetricName,
    TeamMetric,
)

# The batch call refuses more IDs than this (400).
BATCH_METRICS_MAX_IDS = 100


def sandbox_metrics(
    sandbox_id: str, start: datetime | None = None, end: datetime | None = None
) -> Exchange[list[SandboxMetric]]:
    """A sandbox's samples from `start` to `end` (default: its first and last), oldest first.

    Ranges over an hour come as per-bucket maxima (30 s buckets up to 6 h, coarser beyond).
    """
    query = _range_query(start, end)
    call = Call("GET", "/sandboxes/{sandboxID}/metrics", {"sandboxID": sandbox_id}, query)
    reply = yield from send(call)
    return decode(reply, list[SandboxMetric])


def sandboxes_metrics(sandbox_ids: Sequence[str]) -> Exchange[dict[str, SandboxMetric]]:
    """The latest sample of each sandbox, for any number of IDs (100 per request).

    IDs without data are absent from the result, as they are from the API's answer.
    """
    unique_ids = list(dict.fromkeys(sandbox_ids))
    chunks = [
        unique_ids[first : first + BATCH_METRICS_MAX_IDS]
        for first in range(0, len(unique_ids), BATCH_METRICS_MAX_IDS)
    ]
    calls = [
        Call("GET", "/sandboxes/metrics", query=[("sandbox_ids", ",".join(chunk))])
        for chunk in chunks
    ]
    replies = yield from send_all(calls)
    merged: dict[str, SandboxMetric] = {}
    for reply in replies:
        merged.update(decode(reply, SandboxesWithMetrics).sandboxes)
    return merged


def team_metrics(
    team_id: str, start: datetime | None = None, end: datetime | None = None
) -> Exchange[list[TeamMetric]]:
    """The team's concurrency and start rate per bucket (default range: the last 7 days)."""
    query = _range_query(start, end)
    reply = yield from send(Call("GET", "/teams/{teamID}/metrics", {"teamID": team_id}, query))
    return decode(reply, list[TeamMetric])


def team_max_metric(
    team_id: str,
    metric: TeamMaxMetricName,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Exchange[MaxTeamMetric]:
    """The peak of one team metric over the range and when it happened (0 and now if none)."""
    query = [*_range_query(start, end), ("metric", metric)]
    reply = yield from send(Call("GET", "/teams/{teamID}/metrics/max", {"teamID": team_id}, query))
    return decode(reply, MaxTeamMetric)


def _range_query(start: datetime | None, end: datetime | None) -> list[tuple[str, str]]:
    """`start`/`end` as the Unix seconds the API takes; naive datetimes are refused."""
    query: list[tuple[str, str]] = []
    for name, when in (("start", start), ("end", end)):
        if when is None:
            continue
        if when.tzinfo is None:
            raise ValueError(f"{name} must carry a time zone, got {when.isoformat()}")
        query.append((name, str(int(when.timestamp()))))
    if start is not None and end is not None and end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    return query
