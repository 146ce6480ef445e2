"""Long metric ranges as per-bucket maxima, with E2B's steps (docs/E2B-API.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Sequence

from sandboxd.store import Sample

HOUR_S = 3600
# (range shorter than, step) in seconds; beyond the last, 15 minutes.
STEPS_S = (
    (HOUR_S, 5),
    (6 * HOUR_S, 30),
    (12 * HOUR_S, 60),
    (24 * HOUR_S, 120),
    (7 * 24 * HOUR_S, 300),
)
LONGEST_STEP_S = 900


def step_for_range_s(range_s: int) -> int:
    """The bucket width E2B uses for a range of `range_s` seconds."""
    return next((step for limit, step in STEPS_S if range_s < limit), LONGEST_STEP_S)


def bucket_maxima(samples: Sequence[Sample], start_s: int, step_s: int) -> list[Sample]:
    """One sample per `step_s` bucket from `start_s`, each gauge the bucket's maximum, stamped
    with the bucket's start. Samples must be oldest first; samples at 5 s pass unchanged."""
    if step_s <= 5:
        return list(samples)
    buckets: dict[int, Sample] = {}
    for sample in samples:
        bucket_start = start_s + (sample.ts_unix_s - start_s) // step_s * step_s
        kept = buckets.get(bucket_start)
        buckets[bucket_start] = sample if kept is None else _maximum(kept, sample, bucket_start)
    return [_restamp(sample, bucket_start) for bucket_start, sample in sorted(buckets.items())]


def _maximum(a: Sample, b: Sample, ts_unix_s: int) -> Sample:
    return Sample(
        sandbox_id=a.sandbox_id,
        ts_unix_s=ts_unix_s,
        cpu_count=max(a.cpu_count, b.cpu_count),
        cpu_used_pct=max(a.cpu_used_pct, b.cpu_used_pct),
        mem_used_bytes=max(a.mem_used_bytes, b.mem_used_bytes),
        mem_total_bytes=max(a.mem_total_bytes, b.mem_total_bytes),
        mem_cache_bytes=max(a.mem_cache_bytes, b.mem_cache_bytes),
        disk_used_bytes=max(a.disk_used_bytes, b.disk_used_bytes),
        disk_total_bytes=max(a.disk_total_bytes, b.disk_total_bytes),
    )


def _restamp(sample: Sample, ts_unix_s: int) -> Sample:
    return _maximum(sample, sample, ts_unix_s)
