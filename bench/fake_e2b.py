"""A fake E2B API for the collector benchmarks: N running sandboxes, served fast.

    python bench/fake_e2b.py --sandboxes 10000      # prints "fake e2b ready: http://127.0.0.1:<port>"
    python bench/fake_e2b.py --sandboxes 1 --past-ends 100000

A bare asyncio HTTP/1.1 server (keep-alive, stdlib) rather than uvicorn + h11, so the server
costs little next to the collector it measures. It serves what the collector reads: the
sandbox list in pages of 100 (`X-Next-Token`), the batch metrics of any 100 IDs (a fresh
sample stamped with the current second), one sandbox's recent history, team metrics and
maxima, the team's lifecycle events, the running sandboxes' logs, and empty templates and
webhooks. Any key is accepted.

History (`--past-ends M`): M sandboxes that ended before the fake started, each with a
killed event, spread from 23 h to 1 h before it started.
The events call pages them by `offset`/`limit` (at most 100), newest first unless
`orderAsc`, filtered by `types`, as E2B's does. An ended sandbox still answers its logs and
metrics calls, with nothing in them.

`POST /bench/oom` (the benchmark's own call, not E2B's) appends sandboxd's structured record
of a kernel OOM kill to the first running sandbox's log, stamped with the current
millisecond, and answers `{"at_unix_ms": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

PAGE = 100
EVENTS_PAGE_MAX = 100
# Past ends lie from 23 h to 1 h before the fake starts: all inside the monitor's first 24 h
# look back, none recent enough to count as live.
HISTORY_SPAN_S = 22 * 3600
HISTORY_UNTIL_S = 3600
ENDED_PREFIX = "ended"
KILL_REASONS = ("killed by API", "timeout", "error")
TEAM_ID = "0b6f4a2c-1d3e-4f5a-8b7c-9d0e1f2a3b4c"
MIB = 2**20


def sandbox_id(index: int) -> str:
    """A 20-character ID, like E2B's."""
    return f"bench{index:015d}"


def ended_sandbox_id(index: int) -> str:
    """A 20-character ID of a sandbox that ended before the fake started."""
    return f"{ENDED_PREFIX}{index:015d}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def oom_record(at_ms: int, memory_limit_bytes: int) -> dict[str, object]:
    """sandboxd's structured record of a kernel OOM kill at `at_ms` (Unix ms), the form
    `sandboxd.journal` writes and `collectors.oom` confirms (the `record` field)."""
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    limit_mib = memory_limit_bytes // MIB
    return {
        "timestamp": _iso(at_ms / 1000),
        "level": "error",
        "message": f"OOM kill: python3 (pid 4242) killed, memory limit {limit_mib} MiB",
        "fields": {
            "process": "python3",
            "pid": "4242",
            "memory_limit_bytes": str(memory_limit_bytes),
            "at": at.isoformat(),
            "record": "kernel_oom",
        },
    }


class PastEnds:
    """Killed events of `count` sandboxes that ended in the 22 h before `until` (Unix s),
    index 0 the newest; rendered per page, never all at once."""

    def __init__(self, count: int, until: float) -> None:
        self.count = count
        self.until = until
        self.step_s = HISTORY_SPAN_S / max(1, count)

    def event(self, index: int) -> dict[str, object]:
        ended = self.until - (index + 1) * self.step_s
        started = ended - 300
        return {
            "id": f"00000000-0000-4000-8000-{index:012d}",
            "version": "v1",
            "type": "sandbox.lifecycle.killed",
            "eventCategory": "lifecycle",
            "eventLabel": "killed",
            "eventData": {
                "execution": {
                    "started_at": _iso(started),
                    "vcpu_count": 2,
                    "memory_mb": 512,
                    "execution_time": 300_000,
                },
                "kill_reason": KILL_REASONS[index % len(KILL_REASONS)],
            },
            "timestamp": _iso(ended),
            "sandboxId": ended_sandbox_id(index),
            "sandboxExecutionId": f"00000000-0000-4000-9000-{index:012d}",
            "sandboxTemplateId": "base",
            "sandboxBuildId": "00000000-0000-4000-8000-0000000000b1",
            "sandboxTeamId": TEAM_ID,
        }

    def page(self, query: dict[str, list[str]]) -> bytes:
        """One page of the events call for `query` (offset, limit, orderAsc, types)."""
        types = query.get("types", [])
        if types and "sandbox.lifecycle.killed" not in types:
            return b"[]"
        offset = int(query.get("offset", ["0"])[0])
        limit = min(EVENTS_PAGE_MAX, int(query.get("limit", ["10"])[0]))
        ascending = query.get("orderAsc", ["false"])[0] == "true"
        positions = range(offset, min(offset + limit, self.count))
        indices = [self.count - 1 - p if ascending else p for p in positions]
        return json.dumps([self.event(i) for i in indices]).encode()


class FakeE2B:
    """Pre-rendered pages and per-sandbox metric templates for N running sandboxes."""

    def __init__(self, count: int, past_ends: int = 0) -> None:
        started = time.time() - 600
        self.past = PastEnds(past_ends, time.time() - HISTORY_UNTIL_S)
        self.logs: dict[str, list[dict[str, object]]] = {sandbox_id(i): [] for i in range(count)}
        self.count = count
        self.pages: list[bytes] = []
        for first in range(0, count, PAGE):
            page = [
                {
                    "templateID": "base",
                    "alias": "base",
                    "sandboxID": sandbox_id(i),
                    "clientID": "6532622b",
                    "startedAt": _iso(started),
                    "endAt": _iso(started + 24 * 3600),
                    "cpuCount": 2,
                    "memoryMB": 512,
                    "diskSizeMB": 1024,
                    "metadata": {"bench": "yes", "shard": str(i % 16)},
                    "state": "running",
                    "envdVersion": "0.6.4",
                }
                for i in range(first, min(first + PAGE, count))
            ]
            self.pages.append(json.dumps(page).encode())
        # One sample per sandbox: the timestamp is filled in per request.
        self.metric_parts = {
            sandbox_id(i): (
                f'"cpuCount":2,"cpuUsedPct":{(i * 7) % 100}.5,"memUsed":{(64 + i % 384) * MIB},'
                f'"memTotal":{512 * MIB},"memCache":{(i % 32) * MIB},"diskUsed":{(i % 900) * MIB},'
                f'"diskTotal":{1024 * MIB}}}'
            )
            for i in range(count)
        }

    def metric(self, sid: str, ts: int) -> str:
        return f'{{"timestamp":"{_iso(ts)}","timestampUnix":{ts},{self.metric_parts[sid]}'

    def answer(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, bytes, dict[str, str]]:
        now = int(time.time())
        if method == "POST" and path == "/bench/oom":
            at_ms = int(time.time() * 1000)
            self.logs[sandbox_id(0)].append(oom_record(at_ms, 512 * MIB))
            return 200, json.dumps({"at_unix_ms": at_ms}).encode(), {}
        if path == "/v2/sandboxes":
            page = int(query.get("nextToken", ["0"])[0])
            headers = {"X-Next-Token": str(page + 1)} if page + 1 < len(self.pages) else {}
            return 200, self.pages[page], headers
        if path == "/sandboxes/metrics":
            ids = unquote(query.get("sandbox_ids", [""])[0]).split(",")
            parts = [f'"{sid}":{self.metric(sid, now)}' for sid in ids if sid in self.metric_parts]
            return 200, ('{"sandboxes":{' + ",".join(parts) + "}}").encode(), {}
        if path.startswith("/sandboxes/") and path.endswith("/metrics"):
            sid = path.split("/")[2]
            if sid.startswith(ENDED_PREFIX):
                return 200, b"[]", {}
            if sid not in self.metric_parts:
                return 404, b'{"code":404,"message":"sandbox not found"}', {}
            history = [self.metric(sid, now - 5 * back) for back in (2, 1, 0)]
            return 200, ("[" + ",".join(history) + "]").encode(), {}
        if path == f"/teams/{TEAM_ID}/metrics":
            body = [
                {
                    "timestamp": _iso(now - back),
                    "timestampUnix": now - back,
                    "concurrentSandboxes": self.count,
                    "sandboxStartRate": 0.0,
                }
                for back in (10, 5, 0)
            ]
            return 200, json.dumps(body).encode(), {}
        if path == f"/teams/{TEAM_ID}/metrics/max":
            peak = {"timestamp": _iso(now), "timestampUnix": now, "value": self.count}
            return 200, json.dumps(peak).encode(), {}
        if path.endswith("/logs"):
            return 200, self.log_page(path.split("/")[3], query), {}
        if path == "/events/sandboxes":
            return 200, self.past.page(query), {}
        if path in ("/v2/templates", "/events/webhooks"):
            return 200, b"[]", {}
        return 404, b'{"code":404,"message":"not found"}', {}

    def log_page(self, sid: str, query: dict[str, list[str]]) -> bytes:
        """A sandbox's log lines from `cursor` (Unix ms) on, forward (oldest first) or
        backward (newest first), at most `limit`."""
        lines = self.logs.get(sid, [])
        cursor_ms = int(query.get("cursor", ["0"])[0])
        limit = int(query.get("limit", ["1000"])[0])
        forward = query.get("direction", ["forward"])[0] == "forward"

        def unix_ms(line: dict[str, object]) -> int:
            stamp = datetime.strptime(str(line["timestamp"]), "%Y-%m-%dT%H:%M:%S.%fZ")
            return int(stamp.replace(tzinfo=UTC).timestamp() * 1000)

        if forward:
            chosen = [line for line in lines if unix_ms(line) >= cursor_ms][:limit]
        else:
            chosen = [line for line in reversed(lines) if unix_ms(line) <= cursor_ms][:limit]
        return json.dumps({"logs": chosen}).encode()


async def serve_connection(
    api: FakeE2B, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target = (part.decode() for part in head.split(b" ", 2)[:2])
            length = _content_length(head)
            if length:
                await reader.readexactly(length)  # no call here reads a body
            parts = urlsplit(target)
            status, body, headers = api.answer(method, parts.path, parse_qs(parts.query))
            extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            reason = "OK" if status == 200 else "Error"
            head_out = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n"
            )
            writer.write(head_out.encode() + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def main_async(count: int, port: int, past_ends: int) -> None:
    api = FakeE2B(count, past_ends)
    server = await asyncio.start_server(
        lambda r, w: serve_connection(api, r, w), "127.0.0.1", port, backlog=256
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"fake e2b ready: http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandboxes", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--past-ends", type=int, default=0, help="sandboxes ended before start")
    arguments = parser.parse_args()
    asyncio.run(main_async(arguments.sandboxes, arguments.port, arguments.past_ends))


if __name__ == "__main__":
    main()
