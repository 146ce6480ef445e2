"""The blocking E2B client: drives actions over an injected `httpx.Client`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


class E2BClient:
    """Runs E2B actions (`e2bapi.actions`) one call at a time.

    `http` carries the base URL and the `X-API-Key` header (see `sandscope.clients`);
    tests hand in an `httpx.MockTransport` or a client aimed at a local server.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        team_id: str | None = None,
        retry: RetryPolicy | None = None,
        request_timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._http = http
        self._team_id = team_id
        self._retry = retry or RetryPolicy()
        self._request_timeout_s = request_timeout_s
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the underlying httpx client."""
        self._http.close()

    def __enter__(self) -> E2BClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, action: Exchange[T]) -> T:
        """Drive `action` to its end and return its result; raises `E2BError`s."""
        try:
            calls = next(action)
            while True:
                try:
                    replies = [self._send_with_retries(call) for call in calls]
                except E2BError as error:
                    calls = action.throw(error)
                else:
                    calls = action.send(replies)
        except StopIteration as finished:
            return cast(T, finished.value)

    def resolve_team_id(self) -> str:
        """The configured team ID, or the one named by the newest lifecycle event."""
        if self._team_id is None:
            self._team_id = self.run(discover_team_id())
            log.info("team ID %s learned from a lifecycle event's sandboxTeamId", self._team_id)
        return self._team_id

    def _send_with_retries(self, call: Call) -> Reply:
        attempt = 1
        while True:
            try:
                return self._send_once(call)
            except E2BError as error:
                delay_s = self._retry.delay_before_retry_s(call, error, attempt)
                if delay_s is None:
                    raise
                log.warning("%s; attempt %d again in %.1f s", error, attempt + 1, delay_s)
                self._sleep(delay_s)
                attempt += 1

    def _send_once(self, call: Call) -> Reply:
        request = build_request(self._http, call, self._request_timeout_s)
        try:
            response = self._http.send(request)
        except httpx.HTTPError as failure:
            raise to_transport_error(call, failure) from None
        return to_reply(call, response, self._clock())
