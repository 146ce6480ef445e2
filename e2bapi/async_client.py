"""The asyncio E2B client: drives actions over an injected `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar, cast

import httpx

from e2bapi.errors import E2BError
from e2bapi.exchange import Call, Exchange, Reply
from e2bapi.retry import RetryPolicy
from e2bapi.team import discover_team_id
from e2bapi.wire import build_request, to_reply, to_transport_error, utc_now

T = TypeVar("T")
log = logging.getLogger(__name__)

# httpx's AsyncClient turns CPU-bound past about 10 requests in flight on this class of
# machine, and an unbounded gather over 1,000 requests hit PoolTimeout (docs/PERFORMANCE.md,
# "HTTP polling").
DEFAULT_MAX_CONCURRENCY = 10


class AsyncE2BClient:
    """Runs E2B actions (`e2bapi.actions`); the calls of one step go out concurrently.

    `http` carries the base URL and the `X-API-Key` header (see `sandscope.clients`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        team_id: str | None = None,
        retry: RetryPolicy | None = None,
        request_timeout_s: float = 10.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._http = http
        self._team_id = team_id
        self._retry = retry or RetryPolicy()
        self._request_timeout_s = request_timeout_s
        self._in_flight = asyncio.Semaphore(max_concurrency)
        self._sleep = sleep
        self._clock = clock

    async def aclose(self) -> None:
        """Close the underlying httpx client."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncE2BClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(self, action: Exchange[T]) -> T:
        """Drive `action` to its end and return its result; raises `E2BError`s."""
        try:
            calls = next(action)
            while True:
                try:
                    replies = await self._send_concurrently(calls)
                except E2BError as error:
                    calls = action.throw(error)
                else:
                    calls = action.send(replies)
        except StopIteration as finished:
            return cast(T, finished.value)

    async def resolve_team_id(self) -> str:
        """The configured team ID, or the one named by the newest lifecycle event."""
        if self._team_id is None:
            self._team_id = await self.run(discover_team_id())
            log.info("team ID %s learned from a lifecycle event's sandboxTeamId", self._team_id)
        return self._team_id

    async def _send_concurrently(self, calls: Sequence[Call]) -> list[Reply]:
        if len(calls) == 1:
            return [await self._send_with_retries(calls[0])]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._send_with_retries(call)) for call in calls]
        except* E2BError as failures:
            # The first failure stands for the batch; the task group cancelled the rest.
            raise failures.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _send_with_retries(self, call: Call) -> Reply:
        attempt = 1
        while True:
            try:
                async with self._in_flight:
                    return await self._send_once(call)
            except E2BError as error:
                delay_s = self._retry.delay_before_retry_s(call, error, attempt)
                if delay_s is None:
                    raise
                log.warning("%s; attempt %d again in %.1f s", error, attempt + 1, delay_s)
                await self._sleep(delay_s)
                attempt += 1

    async def _send_once(self, call: Call) -> Reply:
        request = build_request(self._http, call, self._request_timeout_s)
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as failure:
            raise to_transport_error(call, failure) from None
        return to_reply(call, response, self._clock())
