"""Metric routes: one sandbox's history, the latest of many, team usage and its peaks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxd.api.parsing import int_query
from sandboxd.bucketing import bucket_maxima, step_for_range_s
from sandboxd.manager import SandboxManager
from sandboxd.problems import ApiProblem
from sandboxd.records import iso
from sandboxd.store import Sample, TeamSample

BATCH_MAX_IDS = 100
TEAM_DEFAULT_RANGE_S = 7 * 24 * 3600
TEAM_MAX_METRICS = ("concurrent_sandboxes", "sandbox_start_rate")


def _manager(request: Request) -> SandboxManager:
    manager: SandboxManager = request.app.state.manager
    return manager


def sample_body(sample: Sample) -> dict[str, Any]:
    """A SandboxMetric, with the deprecated `timestamp` the SDK still requires."""
    return {
        "timestamp": iso(datetime.fromtimestamp(sample.ts_unix_s, UTC)),
        "timestampUnix": sample.ts_unix_s,
        "cpuCount": sample.cpu_count,
        "cpuUsedPct": sample.cpu_used_pct,
        "memUsed": sample.mem_used_bytes,
        "memTotal": sample.mem_total_bytes,
        "memCache": sample.mem_cache_bytes,
        "diskUsed": sample.disk_used_bytes,
        "diskTotal": sample.disk_total_bytes,
    }


def _range(request: Request) -> tuple[int | None, int | None]:
    start_s = int_query(request, "start", None, 0)
    end_s = int_query(request, "end", None, 0)
    if start_s is not None and end_s is not None and end_s < start_s:
        raise ApiProblem(400, "end is before start")
    return start_s, end_s


async def sandbox_metrics(request: Request) -> Response:
    manager = _manager(request)
    record = manager.known_record(request.path_params["sandbox_id"])
    start_s, end_s = _range(request)
    samples = manager.store.samples(record.sandbox_id, start_s, end_s)
    if samples:
        first_s = start_s if start_s is not None else samples[0].ts_unix_s
        last_s = end_s if end_s is not None else samples[-1].ts_unix_s
        samples = bucket_maxima(samples, first_s, step_for_range_s(last_s - first_s))
    return JSONResponse([sample_body(sample) for sample in samples])


async def batch_metrics(request: Request) -> Response:
    raw = request.query_params.get("sandbox_ids", "")
    sandbox_ids = list(dict.fromkeys(part for part in raw.split(",") if part))
    if not sandbox_ids:
        raise ApiProblem(400, "sandbox_ids is required")
    if len(sandbox_ids) > BATCH_MAX_IDS:
        raise ApiProblem(400, f"at most {BATCH_MAX_IDS} sandbox IDs per request")
    latest = _manager(request).store.latest_samples(sandbox_ids)
    return JSONResponse({"sandboxes": {sid: sample_body(s) for sid, s in latest.items()}})


def _team_samples(request: Request) -> list[TeamSample]:
    manager = _manager(request)
    if request.path_params["team_id"] != manager.team_id:
        raise ApiProblem(403, "you are not a member of this team")
    start_s, end_s = _range(request)
    now_s = int(manager.clock().timestamp())
    end_s = now_s if end_s is None else end_s
    start_s = end_s - TEAM_DEFAULT_RANGE_S if start_s is None else start_s
    return manager.store.team_samples(start_s, end_s)


async def team_metrics(request: Request) -> Response:
    samples = _team_samples(request)
    return JSONResponse(
        [
            {
                "timestamp": iso(datetime.fromtimestamp(sample.ts_unix_s, UTC)),
                "timestampUnix": sample.ts_unix_s,
                "concurrentSandboxes": sample.concurrent_sandboxes,
                "sandboxStartRate": sample.sandbox_start_rate,
            }
            for sample in samples
        ]
    )


async def team_max_metric(request: Request) -> Response:
    metric = request.query_params.get("metric")
    if metric not in TEAM_MAX_METRICS:
        raise ApiProblem(400, f"metric must be one of {', '.join(TEAM_MAX_METRICS)}")
    samples = _team_samples(request)

    def value(sample: TeamSample) -> float:
        if metric == "concurrent_sandboxes":
            return sample.concurrent_sandboxes
        return sample.sandbox_start_rate

    peak = max(samples, key=value, default=None)
    if peak is None or value(peak) == 0:
        now = _manager(request).clock()
        return JSONResponse(
            {"timestamp": iso(now), "timestampUnix": int(now.timestamp()), "value": 0}
        )
    return JSONResponse(
        {
            "timestamp": iso(datetime.fromtimestamp(peak.ts_unix_s, UTC)),
            "timestampUnix": peak.ts_unix_s,
            "value": value(peak),
        }
    )


ROUTES = [
    Route("/sandboxes/metrics", batch_metrics, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/metrics", sandbox_metrics, methods=["GET"]),
    Route("/teams/{team_id}/metrics", team_metrics, methods=["GET"]),
    Route("/teams/{team_id}/metrics/max", team_max_metric, methods=["GET"]),
]
