"""A real sandboxd per test module, on free ports, with fast sampling (the shared fixtures)."""

from __future__ import annotations

from tests.sandboxd.sandboxd_fixtures import api, new_sandbox, sandboxd, sdk_env, small_sandbox

__all__ = ["api", "new_sandbox", "sandboxd", "sdk_env", "small_sandbox"]
