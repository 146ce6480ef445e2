"""The demo sandboxes of `sandscope run` on the local sandboxd: real work through the official
E2B SDK, so a newcomer sees live charts, a peak and an OOM incident within a minute.

Five sandboxes, each with metadata {"demo": "<role>"}:
    cpu      small template, burns ~60 % of its one vCPU (a duty cycle: kind to a small host)
    memory   small template (128 MiB), memory grows ~4 MiB/s until the kernel OOM-kills the
             process; it starts again a minute later, so incidents recur
    disk     small template (64 MiB disk), fills its disk until ENOSPC, then holds
    idle     base template, does nothing; paused after ~30 s, resumed ~30 s later, again
    timeout  base template, created with a 90 s timeout and left to time out; made again later
A loop checks them every few seconds: ended ones are made again, long-lived ones extended
(never shortened). The workloads loop inside the sandboxes, so they need no help from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from e2b import ApiParams, Sandbox, SandboxInfo, SandboxState

Role = Literal["cpu", "memory", "disk", "idle", "timeout"]
ROLES: tuple[Role, ...] = get_args(Role)
METADATA_KEY = "demo"
_MIB = 2**20


@dataclass(frozen=True)
class DemoTimings:
    """How the demo paces itself (seconds unless the name says otherwise); tests shorten it."""

    # Between two looks at the sandboxes; well under the API server's 5 s keep-alive, so the
    # SDK does not reuse a connection at the moment the server closes it.
    tick_s: float = 2.0
    lifetime_s: int = 600  # timeout of the long-lived ones, renewed when half is gone
    idle_pause_after_s: float = 30.0  # running this long, the idle one is paused
    idle_resume_after_s: float = 30.0  # paused this long, it is resumed
    timeout_s: int = 90  # the timeout demo's timeout
    timeout_recreate_after_s: float = 60.0  # after the timeout demo ended
    retry_after_s: float = 30.0  # after a failed call
    cpu_busy_pct: float = 60.0  # of one vCPU
    memory_growth_mib_per_s: float = 4.0
    memory_restart_after_s: float = 60.0  # after the OOM kill
    disk_fill_mib_per_s: float = 2.0
    request_timeout_s: float = 10.0  # per SDK call, so stop() is never held long


@dataclass(frozen=True)
class DemoTarget:
    """Where the demo creates its sandboxes: the API, envd and the key (sandboxd's)."""

    api_url: str
    sandbox_url: str
    api_key: str = field(repr=False)


@dataclass
class _Slot:
    """What the loop knows of one role's sandbox. Times are time.monotonic() seconds."""

    role: Role
    sandbox_id: str | None = None
    phase_since: float = 0.0  # created, paused or resumed at
    ended_at: float | None = None  # when it was seen gone
    next_try_at: float = 0.0  # after a failure


class Demo:
    """The demo loop in a thread: `start()`, then `stop()` (returns within a few seconds and
    leaves the sandboxes to sandboxd, which kills them when it stops)."""

    def __init__(
        self,
        target: DemoTarget,
        say: Callable[[str], None],
        timings: DemoTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timings = timings or DemoTimings()
        self._say = say
        self._clock = clock
        self._opts: ApiParams = {
            "api_key": target.api_key,
            "api_url": target.api_url,
            "sandbox_url": target.sandbox_url,
            "request_timeout": self.timings.request_timeout_s,
        }
        self._slots = {role: _Slot(role) for role in ROLES}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandscope-demo", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the loop; False when a call in progress outlived `timeout_s` (the thread is
        a daemon and ends with the process)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def sandbox_ids(self) -> dict[Role, str | None]:
        """The current sandbox of each role (None while there is none)."""
        return {role: slot.sandbox_id for role, slot in self._slots.items()}

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.tick()
            self._stopping.wait(self.timings.tick_s)

    def tick(self) -> None:
        """One look at every role: make, adopt, pause, resume or extend as due."""
        try:
            try:
                listed = self._list_demo_sandboxes()
            except Exception:  # noqa: BLE001 (a pooled connection closed under us: one more try)
                listed = self._list_demo_sandboxes()
        except Exception as failure:  # noqa: BLE001 (the loop's boundary: say it, retry next tick)
            self._say(f"demo: cannot list the sandboxes: {_words(failure)}")
            return
        adoptable = {info.sandbox_id: info for info in listed.values()}
        for slot in self._slots.values():
            adoptable.pop(slot.sandbox_id or "", None)
        for slot in self._slots.values():
            if self._stopping.is_set() or self._clock() < slot.next_try_at:
                continue
            try:
                self._step(slot, listed, adoptable)
            except Exception as failure:  # noqa: BLE001 (one role's trouble must not stop others)
                slot.next_try_at = self._clock() + self.timings.retry_after_s
                self._say(
                    f"demo: {slot.role}: {_words(failure)}; "
                    f"trying again in {self.timings.retry_after_s:g} s"
                )

    def _list_demo_sandboxes(self) -> dict[str, SandboxInfo]:
        paginator = Sandbox.list(**self._opts)
        found: dict[str, SandboxInfo] = {}
        while paginator.has_next:
            for info in paginator.next_items():
                if info.metadata.get(METADATA_KEY) in ROLES:
                    found[info.sandbox_id] = info
        return found

    def _step(
        self, slot: _Slot, listed: Mapping[str, SandboxInfo], adoptable: dict[str, SandboxInfo]
    ) -> None:
        now = self._clock()
        info = listed.get(slot.sandbox_id or "")
        if info is None and slot.sandbox_id is not None:
            self._say(f"demo: the {slot.role} sandbox {slot.sandbox_id} ended")
            slot.sandbox_id, slot.ended_at = None, now
        if info is None:
            adopted = _pop_role(adoptable, slot.role)
            if adopted is not None:
                slot.sandbox_id, slot.phase_since = adopted.sandbox_id, now
                self._say(f"demo: using the running {slot.role} sandbox {adopted.sandbox_id}")
            elif slot.ended_at is None or now >= slot.ended_at + self._recreate_after_s(slot.role):
                self._create(slot)
            return
        if slot.role == "idle":
            self._pause_or_resume(slot, info, now)
        elif slot.role != "timeout":
            self._extend(slot, info)

    def _recreate_after_s(self, role: Role) -> float:
        return self.timings.timeout_recreate_after_s if role == "timeout" else 0.0

    def _create(self, slot: _Slot) -> None:
        template = TEMPLATES[slot.role]
        timeout_s = self.timings.timeout_s if slot.role == "timeout" else self.timings.lifetime_s
        sandbox = Sandbox.create(
            template=template,
            timeout=timeout_s,
            metadata={METADATA_KEY: slot.role},
            **self._opts,
        )
        slot.sandbox_id, slot.phase_since, slot.ended_at = sandbox.sandbox_id, self._clock(), None
        script = workload_script(slot.role, self.timings)
        if script is not None:
            # timeout=0: envd would kill the command when the call's deadline passed.
            sandbox.commands.run(script, background=True, timeout=0).disconnect()
        self._say(
            f"demo: started the {slot.role} sandbox {sandbox.sandbox_id} "
            f"({template} template: {describe(slot.role, self.timings)})"
        )

    def _pause_or_resume(self, slot: _Slot, info: SandboxInfo, now: float) -> None:
        timings = self.timings
        if info.state == SandboxState.RUNNING and now - slot.phase_since >= (
            timings.idle_pause_after_s
        ):
            Sandbox.pause(info.sandbox_id, **self._opts)
            slot.phase_since = self._clock()
            self._say(f"demo: paused the idle sandbox {info.sandbox_id}")
        elif info.state == SandboxState.PAUSED and now - slot.phase_since >= (
            timings.idle_resume_after_s
        ):
            Sandbox.connect(info.sandbox_id, timeout=timings.lifetime_s, **self._opts)
            slot.phase_since = self._clock()
            self._say(f"demo: resumed the idle sandbox {info.sandbox_id}")
        elif info.state == SandboxState.RUNNING:
            self._extend(slot, info)

    def _extend(self, slot: _Slot, info: SandboxInfo) -> None:
        """Renew the timeout once half of it is gone: always later than the current end."""
        left_s = (info.end_at - datetime.now(UTC)).total_seconds()
        if info.state != SandboxState.RUNNING or left_s >= self.timings.lifetime_s / 2:
            return
        Sandbox.set_timeout(info.sandbox_id, self.timings.lifetime_s, **self._opts)
        self._say(
            f"demo: extended the {slot.role} sandbox {info.sandbox_id} "
            f"by {self.timings.lifetime_s - max(left_s, 0):.0f} s"
        )


def _pop_role(adoptable: dict[str, SandboxInfo], role: Role) -> SandboxInfo | None:
    for sandbox_id, info in adoptable.items():
        if info.metadata.get(METADATA_KEY) == role:
            return adoptable.pop(sandbox_id)
    return None


def _words(failure: Exception) -> str:
    text = str(failure).strip().splitlines()
    return f"{type(failure).__name__}: {text[0] if text else ''}".rstrip(": ")


def _python(code: str) -> str:
    """A shell word running `code` with the box's Python (single quotes: keep them out)."""
    assert "'" not in code
    return f"python3 -c '{code}'"


def _cpu_script(t: DemoTimings) -> str:
    period_s = 0.1
    busy_s = period_s * t.cpu_busy_pct / 100
    return _python(
        "import time\n"
        "while True:\n"
        f"    end = time.monotonic() + {busy_s:.4f}\n"
        "    while time.monotonic() < end: pass\n"
        f"    time.sleep({period_s - busy_s:.4f})\n"
    )


def _memory_script(t: DemoTimings) -> str:
    step_s = 0.25
    chunk_bytes = int(t.memory_growth_mib_per_s * _MIB * step_s)
    # bytes filled with "x", not zeros: the pages are touched, so they count at once.
    hog = _python(
        "import time\n"
        "held = []\n"
        "while True:\n"
        f'    held.append(b"x" * {chunk_bytes})\n'
        f"    time.sleep({step_s})\n"
    )
    return f"while true; do {hog}; sleep {t.memory_restart_after_s:g}; done"


def _disk_script(t: DemoTimings) -> str:
    step_s = 0.5
    chunk_bytes = int(t.disk_fill_mib_per_s * _MIB * step_s)
    return _python(
        "import os, time\n"
        'with open("/home/user/filler.bin", "ab") as out:\n'
        "    try:\n"
        "        while True:\n"
        f'            out.write(b"x" * {chunk_bytes})\n'
        "            out.flush()\n"
        "            os.fsync(out.fileno())\n"
        f"            time.sleep({step_s})\n"
        "    except OSError as full:\n"
        '        print("disk full:", full, flush=True)\n'
        "while True:\n"
        "    time.sleep(3600)\n"
    )


TEMPLATES: Mapping[Role, str] = {
    "cpu": "small",
    "memory": "small",
    "disk": "small",
    "idle": "base",
    "timeout": "base",
}


def workload_script(role: Role, t: DemoTimings) -> str | None:
    """The shell command a role's sandbox runs in the background (None: it stays idle)."""
    if role == "cpu":
        return _cpu_script(t)
    if role == "memory":
        return _memory_script(t)
    if role == "disk":
        return _disk_script(t)
    return None


def describe(role: Role, t: DemoTimings) -> str:
    """What a role's sandbox does, in words, for the line printed when it starts."""
    descriptions: dict[Role, str] = {
        "cpu": f"~{t.cpu_busy_pct:g} % of its one vCPU, all the time",
        "memory": f"memory grows {t.memory_growth_mib_per_s:g} MiB/s until the kernel "
        f"OOM-kills it, again {t.memory_restart_after_s:g} s later",
        "disk": f"fills its disk at {t.disk_fill_mib_per_s:g} MiB/s, then holds",
        "idle": f"idle; paused after {t.idle_pause_after_s:g} s, resumed "
        f"{t.idle_resume_after_s:g} s later, again",
        "timeout": f"times out after {t.timeout_s} s; a new one "
        f"{t.timeout_recreate_after_s:g} s later",
    }
    return descriptions[role]
