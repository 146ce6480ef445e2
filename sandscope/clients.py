"""Building E2B clients from the settings: the one place the API key meets a request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from e2bapi import AsyncE2BClient, E2BClient, RetryPolicy
from sandscope import __version__
from sandscope.settings import Settings

USER_AGENT = f"sandscope/{__version__}"


def _headers(settings: Settings) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    if settings.e2b_api_key is not None:
        headers["X-API-Key"] = settings.e2b_api_key.get_secret_value()
    return headers


def _retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts, retry_after_cap_s=settings.retry_after_cap_s
    )


def open_client(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> E2BClient:
    """A sync client for `settings.e2b_api_url`; close it with `client.close()`.

    `sleep` waits between retries (the collector's returns early once it is stopping).
    """
    http = httpx.Client(
        base_url=settings.e2b_api_url,
        headers=_headers(settings),
        timeout=settings.request_timeout_s,
    )
    return E2BClient(
        http,
        team_id=settings.e2b_team_id,
        retry=_retry_policy(settings),
        request_timeout_s=settings.request_timeout_s,
        sleep=sleep,
    )


def open_async_client(
    settings: Settings, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> AsyncE2BClient:
    """An async client for `settings.e2b_api_url`; close it with `await client.aclose()`.

    `sleep` waits between retries, as for `open_client`.
    """
    http = httpx.AsyncClient(
        base_url=settings.e2b_api_url,
        headers=_headers(settings),
        timeout=settings.request_timeout_s,
    )
    return AsyncE2BClient(
        http,
        team_id=settings.e2b_team_id,
        retry=_retry_policy(settings),
        request_timeout_s=settings.request_timeout_s,
        sleep=sleep,
    )
