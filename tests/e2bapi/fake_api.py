"""A scripted E2B API on `httpx.MockTransport`: answers per endpoint, every request kept."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import httpx

from e2bapi import AsyncE2BClient, E2BClient, RetryPolicy

BASE_URL = "https://api.e2b.app"
API_KEY = "e2b_0123456789abcdef0123456789abcdef01234567"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def json_response(
    status_code: int, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON answer."""
    return httpx.Response(status_code, json=body, headers=headers)


class FakeAPI:
    """Answers queued per (method, path); the last answer of a queue repeats.

    An answer may be a response, an exception to raise (a transport failure), or a
    function of the request. An unscripted endpoint answers 599 so a test sees it.
    """

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], deque[Answer]] = defaultdict(deque)
        self.requests: list[httpx.Request] = []
        self.sleeps_s: list[float] = []

    def on(self, method: str, path: str, *answers: Answer) -> FakeAPI:
        """Queue answers for `method path` (a concrete path, no query)."""
        self._answers[(method, path)].extend(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self._answers.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(599, text=f"unscripted {request.method} {request.url.path}")
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def bodies(self) -> list[Any]:
        """The JSON body of every request, None where there was none."""
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def client(self, **options: Any) -> E2BClient:
        """A sync client on this fake API; sleeps are recorded, not slept."""
        http = httpx.Client(
            base_url=BASE_URL,
            transport=httpx.MockTransport(self.handle),
            headers={"X-API-Key": API_KEY},
        )
        options.setdefault("retry", RetryPolicy(random_fraction=lambda: 0.5))
        return E2BClient(http, sleep=self.sleeps_s.append, **options)

    def async_client(self, **options: Any) -> AsyncE2BClient:
        """An async client on this fake API; sleeps are recorded, not slept."""

        async def record_sleep(seconds: float) -> None:
            self.sleeps_s.append(seconds)
            await asyncio.sleep(0)

        http = httpx.AsyncClient(
            base_url=BASE_URL,
            transport=httpx.MockTransport(self.handle),
            headers={"X-API-Key": API_KEY},
        )
        options.setdefault("retry", RetryPolicy(random_fraction=lambda: 0.5))
        return AsyncE2BClient(http, sleep=record_sleep, **options)
