"""Faults between the collector and a real sandboxd, on `httpx.MockTransport`.

Requests go to sandboxd through a real transport unless a fault answers first. A fault is
a function of the request returning None (pass through), a response to send instead, or
`Slow` (wait, then time out as httpx would). `rewrite` edits sandboxd's real answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Slow:
    """Answer nothing for `seconds`, then fail with httpx's read timeout."""

    seconds: float


Fault = Callable[[httpx.Request], "httpx.Response | Slow | None"]
Rewrite = Callable[[httpx.Request, httpx.Response], httpx.Response]


class FaultyAPI:
    """Transports for the sync and async clients, sharing one list of faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rewrites: list[Rewrite] = []
        self.requests: Counter[str] = Counter()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def rewrite(self, rewrite: Rewrite) -> None:
        with self._lock:
            self._rewrites.append(rewrite)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rewrites.clear()

    def _fault_for(self, request: httpx.Request) -> httpx.Response | Slow | None:
        with self._lock:
            self.requests[request.url.path] += 1
            faults = list(self._faults)
        for fault in faults:
            answer = fault(request)
            if answer is not None:
                return answer
        return None

    def _rewritten(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        with self._lock:
            rewrites = list(self._rewrites)
        for rewrite in rewrites:
            response = rewrite(request, response)
        return response

    def sync_transport(self) -> httpx.MockTransport:
        """A transport for one `httpx.Client`; closing the client closes it."""
        real = httpx.HTTPTransport()

        def handle(request: httpx.Request) -> httpx.Response:
            answer = self._fault_for(request)
            if isinstance(answer, Slow):
                time.sleep(answer.seconds)
                raise httpx.ReadTimeout("timed out (injected)", request=request)
            if answer is not None:
                return answer
            response = real.handle_request(request)
            response.read()
            return self._rewritten(request, response)

        return _Forwarding(handle, real)

    def async_transport(self) -> httpx.MockTransport:
        """A transport for one `httpx.AsyncClient`; closing the client closes it."""
        real = httpx.AsyncHTTPTransport()

        async def handle(request: httpx.Request) -> httpx.Response:
            answer = self._fault_for(request)
            if isinstance(answer, Slow):
                await asyncio.sleep(answer.seconds)
                raise httpx.ReadTimeout("timed out (injected)", request=request)
            if answer is not None:
                return answer
            response = await real.handle_async_request(request)
            await response.aread()
            return self._rewritten(request, response)

        return _Forwarding(handle, real)


class _Forwarding(httpx.MockTransport):
    """A mock transport that closes the real transport it forwards to."""

    def __init__(
        self,
        handler: Callable[..., object],
        real: httpx.HTTPTransport | httpx.AsyncHTTPTransport,
    ) -> None:
        super().__init__(handler)  # type: ignore[arg-type]
        self._real = real

    def close(self) -> None:
        if isinstance(self._real, httpx.HTTPTransport):
            self._real.close()

    async def aclose(self) -> None:
        if isinstance(self._real, httpx.AsyncHTTPTransport):
            await self._real.aclose()


def on_path(prefix: str, answer: Callable[[httpx.Request], httpx.Response | Slow]) -> Fault:
    """A fault for every request whose path starts with `prefix`."""

    def fault(request: httpx.Request) -> httpx.Response | Slow | None:
        return answer(request) if request.url.path.startswith(prefix) else None

    return fault


def down(request: httpx.Request) -> httpx.Response:
    """The API is unreachable."""
    raise httpx.ConnectError("connection refused (injected)", request=request)


def rate_limited(retry_after_s: float) -> Callable[[httpx.Request], httpx.Response]:
    """E2B's 429 with a Retry-After."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"code": 429, "message": "rate limit exceeded (injected)"},
            headers={"Retry-After": f"{retry_after_s:g}"},
        )

    return answer


def garbage(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """A 200 whose body breaks the contract."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    return answer
