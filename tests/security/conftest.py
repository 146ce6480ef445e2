"""Attack tests (issue 9's findings): code in a real box, a second host uid, a foreign web
page. Each test is the attack a fix stops; it fails on code without that fix. Bounded in count
and time, and every packet goes to 127.0.0.1."""

from __future__ import annotations

from tests.sandboxd.sandboxd_fixtures import api, new_sandbox, sandboxd, sdk_env, small_sandbox

__all__ = ["api", "new_sandbox", "sandboxd", "sdk_env", "small_sandbox"]
