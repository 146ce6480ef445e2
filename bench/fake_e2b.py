"""A fake E2B API for the collector benchmark: N running sandboxes, served fast.

    python bench/fake_e2b.py --sandboxes 10000      # prints "fake e2b ready: http://127.0.0.1:<port>"

A bare asyncio HTTP/1.1 server (keep-alive, GET only, stdlib) rather than uvicorn + h11, so
the server costs little next to the collector it measures. It serves what the collector
reads: the sandbox list in pages of 100 (`X-Next-Token`), the batch metrics of any 100 IDs
(a fresh sample stamped with the current second), one sandbox's recent history, team
metrics and maxima, and empty events, logs, templates and webhooks. Any key is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

PAGE = 100
TEAM_ID = "0b6f4a2c-1d3e-4f5a-8b7c-9d0e1f2a3b4c"
MIB = 2**20


def sandbox_id(index: int) -> str:
    """A 20-character ID, like E2B's."""
    return f"bench{index:015d}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeE2B:
    """Pre-rendered pages and per-sandbox metric templates for N running sandboxes."""

    def __init__(self, count: int) -> None:
        started = time.time() - 600
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

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
        now = int(time.time())
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
            return 200, b'{"logs":[]}', {}
        if path in ("/events/sandboxes", "/v2/templates", "/events/webhooks"):
            return 200, b"[]", {}
        return 404, b'{"code":404,"message":"not found"}', {}


async def serve_connection(
    api: FakeE2B, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            parts = urlsplit(target)
            status, body, headers = api.answer(parts.path, parse_qs(parts.query))
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


async def main_async(count: int, port: int) -> None:
    api = FakeE2B(count)
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
    arguments = parser.parse_args()
    asyncio.run(main_async(arguments.sandboxes, arguments.port))


if __name__ == "__main__":
    main()
