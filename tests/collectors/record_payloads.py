"""Record real sandboxd answers into `tests/collectors/payloads/` for the parser tests.

    .venv/bin/python -m tests.collectors.record_payloads     # as root, about 30 s

It starts a sandboxd of its own (free ports, a temporary data directory, a sample every
second), makes a scene the collectors must understand, and saves the API's answers verbatim:

- `running`: a `base` sandbox with metadata that printed a few lines;
- `bomb`: a `small` sandbox (128 MiB) where a memory bomb was OOM-killed (it lives on);
- `hog`: a `small` sandbox where a process held ~92 % of the limit for 2 s, then exited
  (memory near its limit, then a drop: what a suspected OOM looks like in samples);
- `paused`: a paused `base` sandbox; `killed`: a `base` sandbox killed through the API.

Templates and webhooks are not recorded: sandboxd serves neither list.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from e2b import CommandExitException, Sandbox

from sandboxd.testing import RunningSandboxd, running_sandboxd
from tests.sandboxd.kernel_oom import MEMORY_BOMB

PAYLOADS = Path(__file__).resolve().parent / "payloads"
# Grows to ~112 MiB (of 128) in 8 MiB steps, holds it 2 s, then exits.
MEMORY_HOG = (
    "python3 -c 'import time\na = []\n"
    "for _ in range(14):\n a.append(bytearray(8 * 2**20)); time.sleep(0.1)\ntime.sleep(2)'"
)


def main() -> None:
    PAYLOADS.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as data_dir,
        running_sandboxd(Path(data_dir), SANDBOXD_SAMPLE_INTERVAL_S="1") as server,
    ):
        for name, value in server.sdk_env().items():
            os.environ[name] = value
        with httpx.Client(
            base_url=server.api_url, headers={"X-API-Key": server.api_key}, timeout=60
        ) as api:
            record_scene(server, api)


def record_scene(server: RunningSandboxd, api: httpx.Client) -> None:
    running = Sandbox.create(template="base", timeout=300, metadata={"owner": "recorder"})
    bomb = Sandbox.create(template="small", timeout=300)
    hog = Sandbox.create(template="small", timeout=300)
    paused = Sandbox.create(template="base", timeout=300)
    killed = Sandbox.create(template="base", timeout=300)
    start = datetime.now(UTC)
    running.commands.run("echo hello from the recorder; echo a warning >&2")
    with contextlib.suppress(CommandExitException):  # killed by the OOM killer, as intended
        bomb.commands.run(MEMORY_BOMB, timeout=60)
    hog.commands.run(MEMORY_HOG, timeout=60)
    time.sleep(1.5)
    api.post(f"/sandboxes/{paused.sandbox_id}/pause").raise_for_status()
    api.delete(f"/sandboxes/{killed.sandbox_id}").raise_for_status()
    time.sleep(1.5)
    ids = {
        "running": running.sandbox_id,
        "bomb": bomb.sandbox_id,
        "hog": hog.sandbox_id,
        "paused": paused.sandbox_id,
        "killed": killed.sandbox_id,
    }
    since_s = str(int(start.timestamp()) - 5)

    def save(name: str, path: str, **params: str) -> Any:
        response = api.get(path, params=params)
        response.raise_for_status()
        body = response.json()
        (PAYLOADS / f"{name}.json").write_text(json.dumps(body, indent=1) + "\n")
        return body

    save("list_sandboxes", "/v2/sandboxes", state="running,paused", limit="100")
    save("batch_metrics", "/sandboxes/metrics", sandbox_ids=",".join([*ids.values(), "nosuchid"]))
    save("sandbox_metrics_bomb", f"/sandboxes/{ids['bomb']}/metrics")
    save("sandbox_metrics_hog", f"/sandboxes/{ids['hog']}/metrics")
    save("team_metrics", f"/teams/{server.team_id}/metrics", start=since_s)
    save(
        "team_max_concurrent",
        f"/teams/{server.team_id}/metrics/max",
        metric="concurrent_sandboxes",
        start=since_s,
    )
    save(
        "team_max_start_rate",
        f"/teams/{server.team_id}/metrics/max",
        metric="sandbox_start_rate",
        start=since_s,
    )
    save("team_events", "/events/sandboxes", limit="100")
    save("logs_bomb", f"/v2/sandboxes/{ids['bomb']}/logs")
    save("logs_running", f"/v2/sandboxes/{ids['running']}/logs")
    (PAYLOADS / "scene.json").write_text(json.dumps(ids, indent=1) + "\n")
    for sandbox in (running, bomb, hog, paused):
        sandbox.kill()


if __name__ == "__main__":
    main()
