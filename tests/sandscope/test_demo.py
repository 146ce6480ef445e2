"""The demo sandboxes against a real sandboxd, with the timings shortened: all five made with
their metadata, the memory one OOM-killed by the kernel, the idle one paused and resumed,
the timeout one timed out and made again, the long-lived ones extended."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sandboxd.testing import RunningSandboxd, api_client, running_sandboxd
from sandscope.demo import ROLES, TEMPLATES, Demo, DemoTarget, DemoTimings, Role, workload_script
from tests.sandboxd.kernel_oom import needs_kernel_oom

pytestmark = needs_kernel_oom  # the demo's memory sandbox is OOM-killed
FAST = DemoTimings(
    tick_s=0.5,
    lifetime_s=30,  # renewed once under 15 s left: within the test
    idle_pause_after_s=2,
    idle_resume_after_s=2,
    timeout_s=3,
    timeout_recreate_after_s=1,
    retry_after_s=2,
    memory_growth_mib_per_s=32,  # OOM in ~4 s
    memory_restart_after_s=3,
    disk_fill_mib_per_s=16,
)
WAIT_S = 60.0


@pytest.fixture(scope="module")
def sandboxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandboxd]:
    with running_sandboxd(
        tmp_path_factory.mktemp("sandboxd"), SANDBOXD_SAMPLE_INTERVAL_S="1"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def api(sandboxd: RunningSandboxd) -> Iterator[httpx.Client]:
    with api_client(sandboxd) as client:
        yield client


class Lines:
    """What the demo printed, from its thread."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


@pytest.fixture(scope="module")
def demo(sandboxd: RunningSandboxd) -> Iterator[tuple[Demo, Lines]]:
    lines = Lines()
    target = DemoTarget(sandboxd.api_url, sandboxd.envd_url, sandboxd.api_key)
    running = Demo(target, lines.say, FAST)
    running.start()
    yield running, lines
    running.stop()


def wait_for(what: str, found: Callable[[], Any], lines: Lines) -> Any:
    """`found()`'s first truthy value, polled until WAIT_S has passed."""
    deadline = time.monotonic() + WAIT_S
    while not (value := found()):
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S:g} s:\n{lines.text()}"
        time.sleep(0.2)
    return value


def events_of(api: httpx.Client, sandbox_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/events/sandboxes/{sandbox_id}")
    return list(answer.json()) if answer.status_code == 200 else []


def test_the_scripts_are_plain_shell_words() -> None:
    for role in ROLES:
        script = workload_script(role, DemoTimings())
        assert script is None or (script.count("'") == 2 and "python3 -c" in script)


def test_all_five_run_with_their_metadata_and_template(
    demo: tuple[Demo, Lines], api: httpx.Client
) -> None:
    running, lines = demo

    def all_made() -> dict[Role, str] | None:
        ids = running.sandbox_ids()
        return {r: i for r, i in ids.items() if i} if all(ids.values()) else None

    ids = wait_for("five demo sandboxes", all_made, lines)
    for role, sandbox_id in ids.items():
        detail = api.get(f"/sandboxes/{sandbox_id}").json()
        assert detail["metadata"] == {"demo": role}
        assert detail["templateID"] == TEMPLATES[role]
    assert "demo: started the memory sandbox" in lines.text()


def test_the_memory_one_is_oom_killed_by_the_kernel(
    demo: tuple[Demo, Lines], api: httpx.Client
) -> None:
    running, lines = demo
    sandbox_id = wait_for("memory sandbox", lambda: running.sandbox_ids()["memory"], lines)

    def oom_lines() -> list[dict[str, Any]]:
        logs = api.get(f"/v2/sandboxes/{sandbox_id}/logs", params={"level": "error"}).json()
        return [line for line in logs["logs"] if "OOM kill" in str(line["message"])]

    wait_for("OOM kill in the memory sandbox's logs", oom_lines, lines)
    detail = api.get(f"/sandboxes/{sandbox_id}").json()
    assert detail["oomKills"] >= 1
    assert detail["state"] == "running"  # only the process dies; the loop starts it again


def test_the_idle_one_is_paused_then_resumed(demo: tuple[Demo, Lines], api: httpx.Client) -> None:
    running, lines = demo
    sandbox_id = wait_for("idle sandbox", lambda: running.sandbox_ids()["idle"], lines)

    def paused_and_resumed() -> bool:
        types = [event["type"] for event in reversed(events_of(api, sandbox_id))]
        paused = "sandbox.lifecycle.paused"
        return paused in types and "sandbox.lifecycle.resumed" in types[types.index(paused) :]

    wait_for("pause then resume of the idle sandbox", paused_and_resumed, lines)
    assert f"demo: paused the idle sandbox {sandbox_id}" in lines.text()


def test_the_timeout_one_times_out_and_is_made_again(
    demo: tuple[Demo, Lines], api: httpx.Client
) -> None:
    running, lines = demo
    first = wait_for("timeout sandbox", lambda: running.sandbox_ids()["timeout"], lines)

    def replaced() -> str | None:
        current = running.sandbox_ids()["timeout"]
        return current if current not in (None, first) else None

    wait_for("a second timeout sandbox", replaced, lines)
    killed = events_of(api, first)[0]
    assert killed["type"] == "sandbox.lifecycle.killed"
    assert killed["eventData"]["kill_reason"] == "timeout"


def test_long_lived_ones_are_extended_never_shortened(
    demo: tuple[Demo, Lines], api: httpx.Client
) -> None:
    running, lines = demo
    sandbox_id = wait_for("cpu sandbox", lambda: running.sandbox_ids()["cpu"], lines)
    end_before = api.get(f"/sandboxes/{sandbox_id}").json()["endAt"]
    wait_for(
        "an extension", lambda: f"extended the cpu sandbox {sandbox_id}" in lines.text(), lines
    )
    end_after = api.get(f"/sandboxes/{sandbox_id}").json()["endAt"]
    assert end_after > end_before  # ISO 8601 in UTC: text order is time order


def test_the_workloads_show_in_the_metrics(demo: tuple[Demo, Lines], api: httpx.Client) -> None:
    running, lines = demo
    cpu_id = wait_for("cpu sandbox", lambda: running.sandbox_ids()["cpu"], lines)
    disk_id = wait_for("disk sandbox", lambda: running.sandbox_ids()["disk"], lines)

    def busy() -> bool:
        samples = api.get(f"/sandboxes/{cpu_id}/metrics").json()
        return any(sample["cpuUsedPct"] >= 30 for sample in samples)

    def nearly_full() -> bool:
        samples = api.get(f"/sandboxes/{disk_id}/metrics").json()
        return any(sample["diskUsed"] >= 0.8 * sample["diskTotal"] for sample in samples)

    wait_for("CPU use in the cpu sandbox", busy, lines)
    wait_for("a nearly full disk in the disk sandbox", nearly_full, lines)


def test_stop_returns_quickly_and_leaves_the_sandboxes_to_sandboxd(
    demo: tuple[Demo, Lines], api: httpx.Client
) -> None:
    running, lines = demo
    wait_for("cpu sandbox", lambda: running.sandbox_ids()["cpu"], lines)
    started = time.monotonic()

    assert running.stop() is True

    assert time.monotonic() - started < 5
    listed = api.get("/v2/sandboxes").json()
    assert {sandbox["metadata"].get("demo") for sandbox in listed} >= {"cpu", "memory", "disk"}
    assert "Traceback" not in lines.text()
