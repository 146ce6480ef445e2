"""The one error a request can end with: answered as E2B's `{"code", "message"}`."""

from __future__ import annotations


class ApiProblem(Exception):
    """A request sandboxd refuses: answered as E2B's `{"code", "message"}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
