"""Finding 9: `SANDBOXD_HOST=0.0.0.0` used to be taken silently, putting the API and envd
(which runs code) on every network the host is on. sandboxd must refuse it, naming the
setting that allows it. The test starts sandboxd and watches it exit; it sends no traffic."""

from __future__ import annotations

import os
import subprocess
import sys

from sandboxd.testing import SOURCE_ROOT, START_TIMEOUT_S, stop

ALLOW_SETTING = "SANDBOXD_ALLOW_PUBLIC_HOST"


def test_a_public_host_is_refused_unless_allowed(tmp_path: object) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOXD_", "E2B_"))},
        "SANDBOXD_HOST": "0.0.0.0",
        "SANDBOXD_DATA_DIR": str(tmp_path),
        "SANDBOXD_API_PORT": "0",
        "SANDBOXD_ENVD_PORT": "0",
        "SANDBOXD_ISOLATION": "reduced",  # nothing to set up or clean if it did start
        "SANDBOXD_CGROUP_PARENT": f"sandboxd-public-host-{os.getpid()}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sandboxd"],
        cwd=SOURCE_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # it started and is serving on 0.0.0.0
        stop(process)
        out, err = "", "still running"

    assert "sandboxd ready" not in out
    assert process.returncode == 2, err
    assert ALLOW_SETTING in err and "0.0.0.0" in err
