"""Everything the E2B client raises, one class per thing a caller may want to handle.

    E2BError                     base of every error below; never raised itself
    ├── TransportError           no answer: connection refused, reset, DNS failure or timeout;
    │                            `request_sent` says whether the server may have acted on it
    ├── APIError                 the API answered with an error status (`status_code`, `message`)
    │   ├── BadRequestError      400: the request was refused as malformed or out of range
    │   ├── AuthenticationError  401: missing, malformed or revoked API key
    │   ├── ForbiddenError       403: the key may not act on this team (a wrong E2B_TEAM_ID)
    │   ├── NotFoundError        404, and E2B's 400 "Build ... not found": no such object
    │   ├── ConflictError        409: wrong state for the action (pausing a paused sandbox)
    │   ├── RateLimitedError     429: a rate or concurrency limit; `retry_after_s` when given
    │   └── ServerError          5xx: the service failed; the request may be retried
    │       └── ServiceUnavailableError  503: the service is down or overloaded
    ├── BadPayloadError          a 2xx answer that breaks the contract: not JSON, a missing
    │                            required field, a wrong type, an unknown enum value
    └── MissingSettingError      a call needs a setting that is not configured (E2B_TEAM_ID)

Every message names the endpoint as the spec writes it (`GET /sandboxes/{sandboxID}`) and
never contains the API key or any other secret.
"""

from __future__ import annotations


class E2BError(Exception):
    """Base of every error the E2B client raises."""


class TransportError(E2BError):
    """No answer from the API. `request_sent` is False when the request never left."""

    def __init__(self, endpoint: str, reason: str, *, request_sent: bool) -> None:
        super().__init__(f"{endpoint}: no answer from the API ({reason})")
        self.endpoint = endpoint
        self.request_sent = request_sent


class APIError(E2BError):
    """The API answered with an error status."""

    def __init__(
        self, endpoint: str, status_code: int, message: str, error_code: str | None = None
    ) -> None:
        super().__init__(f"{endpoint} answered {status_code}: {message}")
        self.endpoint = endpoint
        self.status_code = status_code
        self.message = message
        self.error_code = error_code


class BadRequestError(APIError):
    """400: the request was refused."""


class AuthenticationError(APIError):
    """401: the API key is missing, malformed or revoked."""


class ForbiddenError(APIError):
    """403: the key may not act on this team."""


class NotFoundError(APIError):
    """404 (or E2B's 400 for an unknown build): no such object."""


class ConflictError(APIError):
    """409: the object is in the wrong state for the action."""


class RateLimitedError(APIError):
    """429: a limit was hit. `retry_after_s` is the server's wait, when it named one."""

    def __init__(
        self,
        endpoint: str,
        status_code: int,
        message: str,
        error_code: str | None = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(endpoint, status_code, message, error_code)
        self.retry_after_s = retry_after_s


class ServerError(APIError):
    """5xx: the service failed."""


class ServiceUnavailableError(ServerError):
    """503: the service is down or overloaded."""


class BadPayloadError(E2BError):
    """A success answer that breaks the contract. `field` is a path such as `[0].state`."""

    def __init__(self, endpoint: str, field: str | None, problem: str) -> None:
        where = f" at {field}" if field else ""
        super().__init__(f"{endpoint}: unexpected answer{where}: {problem}")
        self.endpoint = endpoint
        self.field = field
        self.problem = problem


class MissingSettingError(E2BError):
    """A call needs a setting that is not configured; `setting` is its variable name."""

    def __init__(self, setting: str, explanation: str) -> None:
        super().__init__(f"{setting} is not set: {explanation}")
        self.setting = setting
